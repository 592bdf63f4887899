//! The database: opening (pragmas, migrations) and writing batches, one transaction per group of
//! batches. Resources, scopes and series are deduplicated through in-memory caches of their ids.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use sluice_pipeline::Payload;
use sluice_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use sluice_proto::logs::v1::ResourceLogs;
use sluice_proto::metrics::v1::{
    exponential_histogram_data_point, metric, number_data_point, Exemplar, Metric, ResourceMetrics,
};
use sluice_proto::resource::v1::Resource;
use sluice_proto::trace::v1::ResourceSpans;

use super::config::Synchronous;
use super::encode::{attributes_json, body_text, id_blob, int, json_array, json_f64_array};
use super::error::SqliteError;
use super::maintain::Pending;
use super::schema;

/// Settings of an open store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long a statement waits on another connection's lock.
    pub busy_timeout: Duration,
    /// The size cap in bytes (enforced by maintenance).
    pub max_size_bytes: u64,
    /// How durable a commit is.
    pub synchronous: Synchronous,
}

/// Ids of deduplicated rows already in the file.
#[derive(Debug, Default)]
struct Caches {
    resources: HashMap<(String, String), i64>,
    scopes: HashMap<(String, String, String), i64>,
    /// Series by a hash of what identifies them; each entry keeps that identity to compare, so
    /// a hash collision costs a lookup, never a wrong id.
    series: HashMap<u64, Vec<SeriesEntry>, foldhash::fast::RandomState>,
    /// The seed of [`series_hash`], random per process.
    series_state: foldhash::fast::RandomState,
}

/// A cached series: what identifies it as the point carried it, and its id.
#[derive(Debug)]
struct SeriesEntry {
    resource_id: i64,
    scope_id: i64,
    kind: &'static str,
    name: String,
    attributes: Vec<KeyValue>,
    id: i64,
}

impl SeriesEntry {
    fn is(&self, rid: i64, sid: i64, kind: &str, name: &str, attrs: &[KeyValue]) -> bool {
        self.resource_id == rid
            && self.scope_id == sid
            && self.kind == kind
            && self.name == name
            && self.attributes == attrs
    }
}

/// A hash of a series' identity without encoding its attributes: building the JSON key for
/// every point was about 6 % of the writer's time. Equal attribute lists hash equally; lists
/// that differ only in order (which the JSON, and so the database, treats as one series) merely
/// take another cache entry.
fn series_hash(
    state: &foldhash::fast::RandomState,
    rid: i64,
    sid: i64,
    kind: &str,
    name: &str,
    attrs: &[KeyValue],
) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = state.build_hasher();
    (rid, sid, kind, name).hash(&mut h);
    for kv in attrs {
        kv.key.hash(&mut h);
        hash_any_value(kv.value.as_ref(), &mut h);
    }
    h.finish()
}

fn hash_any_value(v: Option<&AnyValue>, h: &mut impl std::hash::Hasher) {
    use std::hash::Hash;
    match v.and_then(|v| v.value.as_ref()) {
        None => 0u8.hash(h),
        Some(any_value::Value::StringValue(s)) => (1u8, s).hash(h),
        Some(any_value::Value::BoolValue(b)) => (2u8, b).hash(h),
        Some(any_value::Value::IntValue(i)) => (3u8, i).hash(h),
        Some(any_value::Value::DoubleValue(d)) => (4u8, d.to_bits()).hash(h),
        Some(any_value::Value::BytesValue(b)) => (5u8, b).hash(h),
        Some(any_value::Value::StringValueStrindex(i)) => (6u8, i).hash(h),
        Some(any_value::Value::ArrayValue(a)) => {
            (7u8, a.values.len()).hash(h);
            for v in &a.values {
                hash_any_value(Some(v), h);
            }
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            (8u8, kv.values.len()).hash(h);
            for kv in &kv.values {
                kv.key.hash(h);
                hash_any_value(kv.value.as_ref(), h);
            }
        }
    }
}

/// One open database file and its single writing connection.
#[derive(Debug)]
pub struct Store {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) options: StoreOptions,
    caches: Caches,
    /// Rollups of the points committed since the watermark, folded as they were written.
    pub(super) pending: Option<Pending>,
}

impl Store {
    /// Opens (creating it and its directories if needed) the database at `path`: incremental
    /// auto-vacuum, WAL, `synchronous` as configured (with `NORMAL` a committed transaction
    /// survives a killed process, a power cut may lose the last ones), then the missing
    /// migrations.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, SqliteError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                std::fs::create_dir_all(dir).map_err(|source| SqliteError::CreateDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
        }
        let p = path.display().to_string();
        let err = |what: &'static str| {
            let p = p.clone();
            move |source| SqliteError::Sqlite {
                path: p,
                what,
                source,
            }
        };
        let mut conn = Connection::open(path).map_err(err("opening"))?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(err("setting the busy timeout"))?;
        // auto_vacuum only takes effect before the first table exists: set it first.
        conn.execute_batch(&format!(
            "PRAGMA auto_vacuum = INCREMENTAL;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {};
             PRAGMA foreign_keys = OFF;
             PRAGMA journal_size_limit = 8388608;
             PRAGMA cache_size = -32768;",
            options.synchronous.pragma()
        ))
        .map_err(err("setting pragmas"))?;
        conn.set_prepared_statement_cache_capacity(64);
        let version = schema::version(&conn).map_err(err("reading the schema version"))?;
        if version > schema::current_version() {
            return Err(SqliteError::SchemaTooNew {
                path: p,
                found: version,
                supported: schema::current_version(),
            });
        }
        if version < schema::current_version() {
            schema::migrate(&mut conn, version).map_err(err("migrating the schema"))?;
            tracing::info!(path = %p, from = version, to = schema::current_version(), "Migrated the SQLite schema.");
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            options,
            caches: Caches::default(),
            pending: None,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection (tests and queries).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub(super) fn sqlite_err(
        &self,
        what: &'static str,
    ) -> impl FnOnce(rusqlite::Error) -> SqliteError {
        let path = self.path.display().to_string();
        move |source| SqliteError::Sqlite { path, what, source }
    }

    /// Writes every payload in one transaction: all of them are committed, or none.
    pub fn write(&mut self, payloads: &[&Payload]) -> Result<(), SqliteError> {
        match self.write_inner(payloads) {
            Ok(committed) => {
                self.fold_committed(committed);
                Ok(())
            }
            Err(e) => {
                // Rolled back: ids cached during the transaction may not exist.
                let _ = self.conn.execute_batch("ROLLBACK");
                self.caches = Caches::default();
                Err(self.sqlite_err("writing")(e))
            }
        }
    }

    /// Writes in one transaction; returns the committed points for the rollups.
    fn write_inner(&mut self, payloads: &[&Payload]) -> rusqlite::Result<Committed> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        // Read inside the transaction: another connection may have written in between.
        let watermark = state(&self.conn, "rollup_watermark")?;
        let first_id = next_point_id(&self.conn, watermark)?;
        let mut w = Writer {
            conn: &self.conn,
            caches: &mut self.caches,
            first_id,
            next_id: first_id,
            inserted_to: first_id - 1,
            ids_ok: true,
            points: Vec::new(),
            folds: Vec::new(),
        };
        for payload in payloads {
            match payload {
                Payload::Metrics(rm) => w.metrics(rm)?,
                Payload::Traces(rs) => w.spans(rs)?,
                Payload::Logs(rl) => w.logs(rl)?,
            }
        }
        w.flush_points()?;
        let (mut folds, ids_ok) = (std::mem::take(&mut w.folds), w.ids_ok);
        self.conn.execute_batch("COMMIT")?;
        if !ids_ok {
            // Not the ids counted (never seen; SQLite documents its numbering as the usual
            // one): the next pass reads these points back.
            tracing::debug!(path = %self.path.display(), "SQLite numbered points unexpectedly; their rollups are read back.");
            folds.clear();
        }
        Ok(Committed {
            watermark,
            first_id,
            folds,
        })
    }

    /// Folds committed points into the pending rollups when they continue them (or the
    /// watermark) without a gap; otherwise the next pass reads them back, and pending rollups
    /// that no longer continue the watermark are dropped.
    fn fold_committed(&mut self, c: Committed) {
        if c.folds.is_empty() {
            return;
        }
        let last_id = c.first_id + c.folds.len() as i64 - 1;
        let pending = match self.pending.take() {
            Some(p) if p.upto == c.first_id - 1 && p.base == c.watermark => p,
            _ if c.watermark == c.first_id - 1 => Pending::new(c.watermark),
            _ => return,
        };
        self.pending = pending.fold(last_id, &c.folds);
    }

    /// The database file's size in bytes (pages in use and free), without the WAL.
    pub fn file_size(&self) -> Result<u64, SqliteError> {
        let (pages, page_size) = self
            .page_stats()
            .map_err(self.sqlite_err("reading the size"))?;
        Ok(pages.saturating_mul(page_size))
    }

    pub(super) fn page_stats(&self) -> rusqlite::Result<(u64, u64)> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok((pages.max(0) as u64, size.max(0) as u64))
    }

    /// `PRAGMA integrity_check`'s answer (`ok` when sound).
    pub fn integrity_check(&self) -> Result<String, SqliteError> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(self.sqlite_err("checking integrity"))
    }
}

/// Rows of one multi-row statement: one `INSERT` per 64 rows instead of per row (the
/// per-statement cost was a fifth of the writer's time).
const ROWS_PER_STATEMENT: usize = 64;

/// Runs `sql(n)`, a statement taking `n` rows of parameters, over `rows`: 64 rows at a time, the
/// rest one by one. `done(n)` follows each statement with its row count.
pub(super) fn execute_chunked<'a, R, P>(
    conn: &Connection,
    sql: impl Fn(usize) -> String,
    rows: &'a [R],
    params: impl Fn(&'a R) -> P,
    mut done: impl FnMut(usize),
) -> rusqlite::Result<()>
where
    P: IntoIterator,
    P::Item: ToSql,
{
    let mut chunks = rows.chunks_exact(ROWS_PER_STATEMENT);
    if chunks.len() > 0 {
        let mut stmt = conn.prepare_cached(&sql(ROWS_PER_STATEMENT))?;
        for chunk in chunks.by_ref() {
            stmt.execute(rusqlite::params_from_iter(chunk.iter().flat_map(&params)))?;
            done(chunk.len());
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut stmt = conn.prepare_cached(&sql(1))?;
        for row in rest {
            stmt.execute(rusqlite::params_from_iter(params(row)))?;
            done(1);
        }
    }
    Ok(())
}

/// A committed point as the rollups see it: series, time, value (NaN for none).
pub(super) type Fold = (i64, i64, f64);

/// What a committed write leaves for the rollups.
struct Committed {
    /// The watermark during the transaction.
    watermark: i64,
    /// The id of its first gauge or sum point; the others follow it.
    first_id: i64,
    /// Its gauge and sum points, in id order (none if their ids are not known).
    folds: Vec<Fold>,
}

/// Inserts rows within an open transaction.
struct Writer<'a> {
    conn: &'a Connection,
    caches: &'a mut Caches,
    /// The id of the transaction's first point, and of the next one.
    first_id: i64,
    next_id: i64,
    /// The id of the last point inserted, as counted; and whether SQLite's ids agreed so far.
    inserted_to: i64,
    ids_ok: bool,
    /// Gauge and sum points not yet inserted: id, series, time, start time, value, flags, trace.
    points: Vec<[Value; 7]>,
    /// Every gauge and sum point of the transaction, in id order.
    folds: Vec<Fold>,
}

fn metric_kind(data: &metric::Data) -> (&'static str, i32, bool) {
    match data {
        metric::Data::Gauge(_) => ("gauge", 0, false),
        metric::Data::Sum(s) => ("sum", s.aggregation_temporality, s.is_monotonic),
        metric::Data::Histogram(h) => ("histogram", h.aggregation_temporality, false),
        metric::Data::ExponentialHistogram(h) => {
            ("exponential_histogram", h.aggregation_temporality, false)
        }
        metric::Data::Summary(_) => ("summary", 0, false),
    }
}

fn exemplar_trace(ex: &[Exemplar]) -> Option<&[u8]> {
    ex.iter().find_map(|e| id_blob(&e.trace_id))
}

impl Writer<'_> {
    fn flush_points(&mut self) -> rusqlite::Result<()> {
        // Whether SQLite gave the rows the ids counted for them (see `first_id`).
        let conn = self.conn;
        let (mut to, mut ok) = (self.inserted_to, self.ids_ok);
        execute_chunked(
            conn,
            |n| {
                format!(
                    "INSERT INTO points (id, series_id, time_unix_nano, start_time_unix_nano, value, flags, trace_id) VALUES {}",
                    vec!["(?, ?, ?, ?, ?, ?, ?)"; n].join(", ")
                )
            },
            &self.points,
            |row| row.iter(),
            |rows| {
                to += rows as i64;
                ok &= conn.last_insert_rowid() == to;
            },
        )?;
        (self.inserted_to, self.ids_ok) = (to, ok);
        self.points.clear();
        Ok(())
    }

    fn resource_id(&mut self, r: Option<&Resource>, schema_url: &str) -> rusqlite::Result<i64> {
        let attrs = attributes_json(r.map(|r| r.attributes.as_slice()).unwrap_or(&[]));
        let key = (attrs, schema_url.to_string());
        if let Some(id) = self.caches.resources.get(&key) {
            return Ok(*id);
        }
        self.conn
            .prepare_cached(
                "INSERT INTO resources (attributes, schema_url) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![key.0, key.1])?;
        let id: i64 = self
            .conn
            .prepare_cached("SELECT id FROM resources WHERE attributes = ?1 AND schema_url = ?2")?
            .query_row(params![key.0, key.1], |r| r.get(0))?;
        self.caches.resources.insert(key, id);
        Ok(id)
    }

    fn scope_id(&mut self, s: Option<&InstrumentationScope>) -> rusqlite::Result<i64> {
        let (name, version, attrs) = match s {
            Some(s) => (
                s.name.clone(),
                s.version.clone(),
                attributes_json(&s.attributes),
            ),
            None => (String::new(), String::new(), "{}".to_string()),
        };
        let key = (name, version, attrs);
        if let Some(id) = self.caches.scopes.get(&key) {
            return Ok(*id);
        }
        self.conn
            .prepare_cached(
                "INSERT INTO scopes (name, version, attributes) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?
            .execute(params![key.0, key.1, key.2])?;
        let id: i64 = self
            .conn
            .prepare_cached(
                "SELECT id FROM scopes WHERE name = ?1 AND version = ?2 AND attributes = ?3",
            )?
            .query_row(params![key.0, key.1, key.2], |r| r.get(0))?;
        self.caches.scopes.insert(key, id);
        Ok(id)
    }

    fn series_id(
        &mut self,
        resource_id: i64,
        scope_id: i64,
        m: &Metric,
        data: &metric::Data,
        attrs: &[KeyValue],
    ) -> rusqlite::Result<i64> {
        let (kind, temporality, monotonic) = metric_kind(data);
        let hash = series_hash(
            &self.caches.series_state,
            resource_id,
            scope_id,
            kind,
            &m.name,
            attrs,
        );
        if let Some(e) = self.caches.series.get(&hash).and_then(|entries| {
            entries
                .iter()
                .find(|e| e.is(resource_id, scope_id, kind, &m.name, attrs))
        }) {
            return Ok(e.id);
        }
        let kvs = attrs;
        let attrs = attributes_json(kvs);
        self.conn
            .prepare_cached(
                "INSERT INTO series (resource_id, scope_id, name, kind, unit, description, temporality, monotonic, attributes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                resource_id,
                scope_id,
                m.name,
                kind,
                m.unit,
                m.description,
                temporality,
                monotonic,
                attrs
            ])?;
        let id: i64 = self
            .conn
            .prepare_cached(
                "SELECT id FROM series WHERE resource_id = ?1 AND scope_id = ?2 AND name = ?3 AND kind = ?4 AND attributes = ?5",
            )?
            .query_row(params![resource_id, scope_id, m.name, kind, attrs], |r| r.get(0))?;
        self.caches
            .series
            .entry(hash)
            .or_default()
            .push(SeriesEntry {
                resource_id,
                scope_id,
                kind,
                name: m.name.clone(),
                attributes: kvs.to_vec(),
                id,
            });
        Ok(id)
    }

    fn metrics(&mut self, rms: &[ResourceMetrics]) -> rusqlite::Result<()> {
        for rm in rms {
            let rid = self.resource_id(rm.resource.as_ref(), &rm.schema_url)?;
            for sm in &rm.scope_metrics {
                let sid = self.scope_id(sm.scope.as_ref())?;
                for m in &sm.metrics {
                    if let Some(data) = &m.data {
                        self.metric(rid, sid, m, data)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn metric(
        &mut self,
        rid: i64,
        sid: i64,
        m: &Metric,
        data: &metric::Data,
    ) -> rusqlite::Result<()> {
        let numbers = match data {
            metric::Data::Gauge(g) => Some(&g.data_points),
            metric::Data::Sum(s) => Some(&s.data_points),
            _ => None,
        };
        if let Some(points) = numbers {
            for p in points {
                let series = self.series_id(rid, sid, m, data, &p.attributes)?;
                let (value, number) = match p.value {
                    Some(number_data_point::Value::AsInt(i)) => (Value::Integer(i), i as f64),
                    Some(number_data_point::Value::AsDouble(d)) => (Value::Real(d), d),
                    // A point without a value (no_recorded_value) carries nothing to store.
                    None => continue,
                };
                // The transaction's first point gets its id; SQLite numbers the rest after it
                // (faster than a given id, which costs a uniqueness probe each).
                let id = self.next_id;
                self.next_id += 1;
                let time = int(p.time_unix_nano);
                self.folds.push((series, time, number));
                self.points.push([
                    if id == self.first_id {
                        Value::Integer(id)
                    } else {
                        Value::Null
                    },
                    Value::Integer(series),
                    Value::Integer(time),
                    Value::Integer(int(p.start_time_unix_nano)),
                    value,
                    Value::Integer(i64::from(p.flags)),
                    exemplar_trace(&p.exemplars).map_or(Value::Null, |t| Value::Blob(t.to_vec())),
                ]);
            }
            if self.points.len() >= ROWS_PER_STATEMENT * 8 {
                self.flush_points()?;
            }
            return Ok(());
        }
        match data {
            metric::Data::Histogram(h) => {
                for p in &h.data_points {
                    let series = self.series_id(rid, sid, m, data, &p.attributes)?;
                    let head = [series, int(p.time_unix_nano), int(p.start_time_unix_nano)];
                    self.insert_point(
                        "histogram_points",
                        head,
                        &[
                            ("count", &int(p.count)),
                            ("sum", &p.sum),
                            ("min", &p.min),
                            ("max", &p.max),
                            ("explicit_bounds", &json_f64_array(&p.explicit_bounds)),
                            ("bucket_counts", &json_array(&p.bucket_counts)),
                            ("flags", &p.flags),
                            ("trace_id", &exemplar_trace(&p.exemplars)),
                        ],
                    )?;
                }
            }
            metric::Data::ExponentialHistogram(h) => {
                for p in &h.data_points {
                    let series = self.series_id(rid, sid, m, data, &p.attributes)?;
                    let buckets = |b: &Option<exponential_histogram_data_point::Buckets>| match b {
                        Some(b) => (b.offset, json_array(&b.bucket_counts)),
                        None => (0, "[]".to_string()),
                    };
                    let (po, pc) = buckets(&p.positive);
                    let (no, nc) = buckets(&p.negative);
                    let head = [series, int(p.time_unix_nano), int(p.start_time_unix_nano)];
                    self.insert_point(
                        "exponential_histogram_points",
                        head,
                        &[
                            ("count", &int(p.count)),
                            ("sum", &p.sum),
                            ("min", &p.min),
                            ("max", &p.max),
                            ("scale", &p.scale),
                            ("zero_count", &int(p.zero_count)),
                            ("zero_threshold", &p.zero_threshold),
                            ("positive_offset", &po),
                            ("positive_counts", &pc),
                            ("negative_offset", &no),
                            ("negative_counts", &nc),
                            ("flags", &p.flags),
                            ("trace_id", &exemplar_trace(&p.exemplars)),
                        ],
                    )?;
                }
            }
            metric::Data::Summary(s) => {
                for p in &s.data_points {
                    let series = self.series_id(rid, sid, m, data, &p.attributes)?;
                    let q: Vec<serde_json::Value> = p
                        .quantile_values
                        .iter()
                        .map(|q| serde_json::json!([q.quantile, q.value]))
                        .collect();
                    let head = [series, int(p.time_unix_nano), int(p.start_time_unix_nano)];
                    self.insert_point(
                        "summary_points",
                        head,
                        &[
                            ("count", &int(p.count)),
                            ("sum", &p.sum),
                            ("quantiles", &serde_json::Value::Array(q).to_string()),
                            ("flags", &p.flags),
                        ],
                    )?;
                }
            }
            metric::Data::Gauge(_) | metric::Data::Sum(_) => {}
        }
        Ok(())
    }

    /// Inserts one histogram or summary point: series, time and start time, then `columns`.
    fn insert_point(
        &self,
        table: &str,
        [series, time, start]: [i64; 3],
        columns: &[(&str, &dyn ToSql)],
    ) -> rusqlite::Result<()> {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let sql = format!(
            "INSERT INTO {table} (series_id, time_unix_nano, start_time_unix_nano, {}) VALUES (?, ?, ?{})",
            names.join(", "),
            ", ?".repeat(columns.len())
        );
        let mut values: Vec<&dyn ToSql> = vec![&series, &time, &start];
        values.extend(columns.iter().map(|(_, v)| *v));
        self.conn.prepare_cached(&sql)?.execute(values.as_slice())?;
        Ok(())
    }

    fn spans(&mut self, rss: &[ResourceSpans]) -> rusqlite::Result<()> {
        for rs in rss {
            let rid = self.resource_id(rs.resource.as_ref(), &rs.schema_url)?;
            for ss in &rs.scope_spans {
                let sid = self.scope_id(ss.scope.as_ref())?;
                for s in &ss.spans {
                    let (code, message) = match &s.status {
                        Some(st) => (st.code, st.message.as_str()),
                        None => (0, ""),
                    };
                    let start = int(s.start_time_unix_nano);
                    let end = int(s.end_time_unix_nano);
                    self.conn
                        .prepare_cached(
                            "INSERT INTO spans (resource_id, scope_id, trace_id, span_id, parent_span_id, trace_state, flags, name, kind,
                                start_time_unix_nano, end_time_unix_nano, duration_nano, status_code, status_message, attributes,
                                dropped_attributes_count, dropped_events_count, dropped_links_count)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                        )?
                        .execute(params![
                            rid,
                            sid,
                            s.trace_id,
                            s.span_id,
                            id_blob(&s.parent_span_id),
                            s.trace_state,
                            s.flags,
                            s.name,
                            s.kind,
                            start,
                            end,
                            end.saturating_sub(start).max(0),
                            code,
                            message,
                            attributes_json(&s.attributes),
                            s.dropped_attributes_count,
                            s.dropped_events_count,
                            s.dropped_links_count
                        ])?;
                    let row = self.conn.last_insert_rowid();
                    for e in &s.events {
                        self.conn
                            .prepare_cached(
                                "INSERT INTO span_events (span_row, time_unix_nano, name, attributes) VALUES (?1, ?2, ?3, ?4)",
                            )?
                            .execute(params![row, int(e.time_unix_nano), e.name, attributes_json(&e.attributes)])?;
                    }
                    for l in &s.links {
                        self.conn
                            .prepare_cached(
                                "INSERT INTO span_links (span_row, trace_id, span_id, trace_state, flags, attributes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            )?
                            .execute(params![row, l.trace_id, l.span_id, l.trace_state, l.flags, attributes_json(&l.attributes)])?;
                    }
                }
            }
        }
        Ok(())
    }

    fn logs(&mut self, rls: &[ResourceLogs]) -> rusqlite::Result<()> {
        for rl in rls {
            let rid = self.resource_id(rl.resource.as_ref(), &rl.schema_url)?;
            for sl in &rl.scope_logs {
                let sid = self.scope_id(sl.scope.as_ref())?;
                for r in &sl.log_records {
                    let time = if r.time_unix_nano != 0 {
                        r.time_unix_nano
                    } else {
                        r.observed_time_unix_nano
                    };
                    self.conn
                        .prepare_cached(
                            "INSERT INTO logs (resource_id, scope_id, time_unix_nano, observed_time_unix_nano, severity_number, severity_text,
                                body, attributes, trace_id, span_id, flags, event_name, dropped_attributes_count)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                        )?
                        .execute(params![
                            rid,
                            sid,
                            int(time),
                            int(r.observed_time_unix_nano),
                            r.severity_number,
                            r.severity_text,
                            body_text(r.body.as_ref()),
                            attributes_json(&r.attributes),
                            id_blob(&r.trace_id),
                            id_blob(&r.span_id),
                            r.flags,
                            r.event_name,
                            r.dropped_attributes_count
                        ])?;
                }
            }
        }
        Ok(())
    }
}

/// The id of the next raw point: after the table's last id and after the watermark. SQLite
/// alone would reuse the ids of deleted rows at the end of the table (retention may empty it),
/// and a point at or below the watermark would never be rolled up.
fn next_point_id(conn: &Connection, watermark: i64) -> rusqlite::Result<i64> {
    let last: Option<i64> = conn.query_row("SELECT max(id) FROM points", [], |r| r.get(0))?;
    Ok(last.unwrap_or(0).max(watermark) + 1)
}

/// Reads one integer of `sluice_state`.
pub(super) fn state(conn: &Connection, key: &str) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT value FROM sluice_state WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}
