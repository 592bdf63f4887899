//! Maintenance: folding new raw points into the rollups, deleting what is past its retention,
//! and holding the file under its size cap. A pass is a sequence of small steps, each its own
//! short transaction, so the writer can commit batches between them.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::clock::duration_nanos;
use super::config::SqliteRetentionConfig;
use super::error::SqliteError;
use super::store::{execute_chunked, state, Fold, Store};

/// Rows one step reads or deletes at most.
pub const STEP_ROWS: i64 = 10_000;
/// Raw points one rollup step folds at most.
pub const ROLLUP_ROWS: i64 = 50_000;
/// Pending rollup rows (minute and hour) at which the writer folds them into the tables at once
/// rather than at the next pass: bounds the memory they take (about 100 bytes each).
pub const PENDING_ROWS_MAX: usize = 65_536;
/// Pending rollup rows past which the writer drops them rather than fold more (it merges them
/// only between transactions, and one transaction can bring 200,000 points).
const PENDING_ROWS_HARD_MAX: usize = 4 * PENDING_ROWS_MAX;
/// Rows one size-cap step deletes at most: small, so the cap takes little more than needed.
const EVICT_ROWS: i64 = 500;
const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;
/// Once over the cap, data is deleted until the file would be this fraction of it, so the cap
/// is not hit again by the next few batches.
const CAP_LOW_WATER: f64 = 0.9;
/// Steps of one pass spent on the size cap at most (a bound if nothing can be deleted).
const CAP_STEPS_MAX: u32 = 100_000;

/// Tables with a time column whose rows expire by the retention in the given tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Raw,
    Minute,
    Hour,
    Spans,
    Logs,
}

/// Retention order: raw tables first (the rollups already hold their numbers).
const EXPIRING: &[(&str, &str, Tier)] = &[
    ("points", "time_unix_nano", Tier::Raw),
    ("histogram_points", "time_unix_nano", Tier::Raw),
    ("exponential_histogram_points", "time_unix_nano", Tier::Raw),
    ("summary_points", "time_unix_nano", Tier::Raw),
    ("spans", "start_time_unix_nano", Tier::Spans),
    ("logs", "time_unix_nano", Tier::Logs),
    ("rollup_minute", "bucket_start", Tier::Minute),
    ("rollup_hour", "bucket_start", Tier::Hour),
];

/// Where a pass is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Rollup,
    Retention(usize),
    Cap { steps: u32, active: bool },
    Checkpoint,
    Done,
}

/// What one pass did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Raw points folded into the rollups.
    pub rolled_up: u64,
    /// Rows deleted for being past their retention.
    pub expired: u64,
    /// Rows deleted to hold the size cap.
    pub evicted: u64,
    /// Pages returned to the file system.
    pub vacuumed_pages: u64,
}

/// One maintenance pass, measured against the time it started.
#[derive(Debug)]
pub struct Pass {
    now: i64,
    phase: Phase,
    /// What it did so far.
    pub report: PassReport,
}

impl Pass {
    /// A pass whose retention is measured from `now_unix_nanos`.
    pub fn new(now_unix_nanos: i64) -> Pass {
        Pass {
            now: now_unix_nanos,
            phase: Phase::Rollup,
            report: PassReport::default(),
        }
    }

    /// Whether every step ran.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }
}

/// One aggregate of a rollup bucket.
#[derive(Debug, Clone, Copy)]
struct Agg {
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    last: f64,
    last_time: i64,
}

impl Agg {
    fn new(t: i64, v: f64) -> Agg {
        Agg {
            count: 1,
            sum: v,
            min: v,
            max: v,
            last: v,
            last_time: t,
        }
    }

    fn add(&mut self, t: i64, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if t >= self.last_time {
            self.last = v;
            self.last_time = t;
        }
    }
}

/// Rollup rows being built: (bucket start, series) → aggregate, for each width.
#[derive(Debug, Default)]
struct Rollups {
    minute: RollupMap,
    hour: RollupMap,
}

type RollupMap = HashMap<(i64, i64), Agg, foldhash::fast::RandomState>;

impl Rollups {
    /// Adds a point. A NaN (SQLite stores it as NULL) has no number to aggregate, and an infinity
    /// is skipped too: +∞ and −∞ in one bucket would make a sum SQLite cannot store.
    fn add(&mut self, series: i64, t: i64, v: f64) {
        if !v.is_finite() {
            return;
        }
        for (map, width) in [(&mut self.minute, MINUTE), (&mut self.hour, HOUR)] {
            let bucket = t - t.rem_euclid(width);
            map.entry((bucket, series))
                .and_modify(|a| a.add(t, v))
                .or_insert_with(|| Agg::new(t, v));
        }
    }

    fn len(&self) -> usize {
        self.minute.len() + self.hour.len()
    }

    /// Adds the rows into the rollup tables (inside the caller's transaction).
    fn upsert(&self, conn: &Connection) -> rusqlite::Result<()> {
        for (table, map) in [("rollup_minute", &self.minute), ("rollup_hour", &self.hour)] {
            // In key order, so the upserts walk the table's b-tree forward instead of jumping
            // around it.
            let mut rows: Vec<(&(i64, i64), &Agg)> = map.iter().collect();
            rows.sort_unstable_by_key(|(key, _)| **key);
            let sql = |n: usize| {
                format!(
                    "INSERT INTO {table} (bucket_start, series_id, count, sum, min, max, last, last_time)
                     VALUES {}
                     ON CONFLICT (bucket_start, series_id) DO UPDATE SET
                        count = count + excluded.count,
                        sum = sum + excluded.sum,
                        min = min(min, excluded.min),
                        max = max(max, excluded.max),
                        last = CASE WHEN excluded.last_time >= last_time THEN excluded.last ELSE last END,
                        last_time = max(last_time, excluded.last_time)",
                    vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; n].join(", ")
                )
            };
            execute_chunked(conn, sql, &rows, agg_params, |_| {})?;
        }
        Ok(())
    }
}

/// One rollup row's parameters, in the `INSERT`'s column order.
fn agg_params(&(&(bucket, series), a): &(&(i64, i64), &Agg)) -> [rusqlite::types::Value; 8] {
    use rusqlite::types::Value::{Integer, Real};
    [
        Integer(bucket),
        Integer(series),
        Integer(a.count),
        Real(a.sum),
        Real(a.min),
        Real(a.max),
        Real(a.last),
        Integer(a.last_time),
    ]
}

/// Rollups of the points committed after the watermark (`base`) up to `upto`, folded by the
/// writer as it committed them, so a pass writes them without reading the points back. Memory
/// only: after a crash the pass folds those points from the raw table, as for any points the
/// writer did not fold.
#[derive(Debug)]
pub struct Pending {
    pub(super) base: i64,
    /// The last point id folded.
    pub(super) upto: i64,
    points: u64,
    rollups: Rollups,
}

impl Pending {
    /// Nothing folded yet after `watermark`.
    pub(super) fn new(watermark: i64) -> Pending {
        Pending {
            base: watermark,
            upto: watermark,
            points: 0,
            rollups: Rollups::default(),
        }
    }

    /// Folds the points with ids `upto + 1 ..= last_id`; `None` (the next pass reads them all
    /// back) if that takes the pending rows past the hard bound, which one huge transaction can.
    pub(super) fn fold(mut self, last_id: i64, folds: &[Fold]) -> Option<Pending> {
        for &(series, t, v) in folds {
            self.rollups.add(series, t, v);
        }
        if self.rollups.len() > PENDING_ROWS_HARD_MAX {
            return None;
        }
        self.points += folds.len() as u64;
        self.upto = last_id;
        Some(self)
    }
}

impl Store {
    /// Whether the pending rollups are big enough to be written now.
    pub(super) fn pending_is_large(&self) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| p.rollups.len() >= PENDING_ROWS_MAX)
    }

    /// One rollup step in its own transaction: the pending rollups, then up to [`ROLLUP_ROWS`]
    /// raw points after the watermark that were not folded. Returns (points rolled up, raw
    /// points read).
    pub(super) fn rollup_step(&mut self) -> rusqlite::Result<(u64, i64)> {
        let pending = self.pending.take();
        let path = &self.path;
        let result = in_transaction(&self.conn, |c| {
            // Read inside the transaction: another connection may have moved it.
            let mut wm = state(c, "rollup_watermark")?;
            let mut n = 0;
            match &pending {
                Some(p) if p.base == wm => {
                    p.rollups.upsert(c)?;
                    (wm, n) = (p.upto, p.points);
                }
                Some(_) => {
                    tracing::debug!(path = %path.display(), "Pending SQLite rollups do not continue the watermark; folding from raw points.");
                }
                None => {}
            }
            let (read, last) = rollup_chunk(c, wm)?;
            c.prepare_cached("UPDATE sluice_state SET value = ?1 WHERE key = 'rollup_watermark'")?
                .execute([last])?;
            Ok((n + read as u64, read))
        });
        if result.is_err() {
            // Rolled back: still usable if they continue the watermark, as checked next time.
            self.pending = pending;
        }
        result
    }

    /// Writes the pending rollups now (the writer, when they grow large, and at shutdown). On
    /// failure they are dropped, so they cannot grow without bound: the next pass folds their
    /// points from the raw table.
    pub(super) fn flush_pending(&mut self) -> Result<(), SqliteError> {
        if self.pending.is_none() {
            return Ok(());
        }
        let result = self.rollup_step();
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.pending = None;
        }
        result.map_err(self.sqlite_err("folding rollups"))?;
        Ok(())
    }

    /// Runs one step of `pass` in its own transaction; `Ok(true)` while steps remain.
    pub fn maintenance_step(
        &mut self,
        pass: &mut Pass,
        retention: &SqliteRetentionConfig,
    ) -> Result<bool, SqliteError> {
        let result = self.step_inner(pass, retention);
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result.map_err(self.sqlite_err("maintaining"))?;
        Ok(!pass.is_done())
    }

    /// Runs a whole pass (tests, and shutdown-free callers that may block the writer).
    pub fn maintain(
        &mut self,
        now_unix_nanos: i64,
        retention: &SqliteRetentionConfig,
    ) -> Result<PassReport, SqliteError> {
        let mut pass = Pass::new(now_unix_nanos);
        while self.maintenance_step(&mut pass, retention)? {}
        Ok(pass.report)
    }

    fn step_inner(
        &mut self,
        pass: &mut Pass,
        retention: &SqliteRetentionConfig,
    ) -> rusqlite::Result<()> {
        match pass.phase {
            Phase::Rollup => {
                let (n, read) = self.rollup_step()?;
                pass.report.rolled_up += n;
                if read < ROLLUP_ROWS {
                    pass.phase = Phase::Retention(0);
                }
            }
            Phase::Retention(i) => {
                let Some(&(table, column, tier)) = EXPIRING.get(i) else {
                    pass.phase = Phase::Cap {
                        steps: 0,
                        active: false,
                    };
                    return Ok(());
                };
                let keep = match tier {
                    Tier::Raw => retention.raw,
                    Tier::Minute => retention.minute,
                    Tier::Hour => retention.hour,
                    Tier::Spans => retention.spans,
                    Tier::Logs => retention.logs,
                };
                let cutoff = pass.now.saturating_sub(duration_nanos(keep));
                let n = in_transaction(&self.conn, |c| {
                    delete_chunk(c, table, &format!("{column} < {cutoff}"), None, STEP_ROWS)
                })?;
                pass.report.expired += n as u64;
                if n < STEP_ROWS {
                    pass.phase = Phase::Retention(i + 1);
                }
            }
            Phase::Cap { steps, active } => {
                let next = self.cap_step(active, &mut pass.report)?;
                pass.phase = match next {
                    Some(active) if steps < CAP_STEPS_MAX => Phase::Cap {
                        steps: steps + 1,
                        active,
                    },
                    Some(_) => {
                        tracing::warn!(path = %self.path.display(), cap_bytes = self.options.max_size_bytes, "SQLite size cap not reached within one maintenance pass; continuing in the next.");
                        Phase::Checkpoint
                    }
                    None => Phase::Checkpoint,
                };
            }
            Phase::Checkpoint => {
                // Moves the WAL into the file and truncates it, so the WAL does not grow past
                // the cap between passes.
                self.conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                pass.phase = Phase::Done;
            }
            Phase::Done => {}
        }
        Ok(())
    }

    /// One step toward the cap: `None` when under it, `Some(active)` while work remains.
    fn cap_step(
        &mut self,
        active: bool,
        report: &mut PassReport,
    ) -> rusqlite::Result<Option<bool>> {
        let cap = self.options.max_size_bytes;
        let (pages, page_size) = self.page_stats()?;
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let free = free.max(0) as u64;
        let file = pages * page_size;
        let used = (pages - free.min(pages)) * page_size;
        let target = if active {
            (cap as f64 * CAP_LOW_WATER) as u64
        } else {
            cap
        };
        if used > target {
            // Delete the oldest data, then give the pages back.
            let n = in_transaction(&self.conn, evict_oldest)?;
            report.evicted += n as u64;
            if n == 0 {
                tracing::warn!(path = %self.path.display(), size_bytes = file, cap_bytes = cap, "SQLite file is over its size cap and holds nothing more to delete.");
                return Ok(None);
            }
            self.vacuum(report)?;
            return Ok(Some(true));
        }
        if free > 0 && (active || file > cap) {
            self.vacuum(report)?;
            return Ok(Some(active));
        }
        Ok(None)
    }

    fn vacuum(&mut self, report: &mut PassReport) -> rusqlite::Result<()> {
        let before: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        // `incremental_vacuum` returns no rows but must be stepped to completion.
        let mut stmt = self.conn.prepare("PRAGMA incremental_vacuum(4096)")?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        drop(rows);
        drop(stmt);
        let after: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        report.vacuumed_pages += (before - after).max(0) as u64;
        Ok(())
    }
}

fn in_transaction<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let v = f(conn)?;
    conn.execute_batch("COMMIT")?;
    Ok(v)
}

/// Deletes up to `limit` rows of `table` matching `filter` (oldest first when `order` is
/// given); a span's events and links go with it. Returns the rows deleted from `table`.
fn delete_chunk(
    conn: &Connection,
    table: &str,
    filter: &str,
    order: Option<&str>,
    limit: i64,
) -> rusqlite::Result<i64> {
    let order = order.map(|o| format!("ORDER BY {o}")).unwrap_or_default();
    if table == "spans" {
        let ids: Vec<i64> = conn
            .prepare(&format!(
                "SELECT id FROM spans WHERE {filter} {order} LIMIT {limit}"
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if ids.is_empty() {
            return Ok(0);
        }
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS doomed (id INTEGER PRIMARY KEY)",
            [],
        )?;
        conn.execute("DELETE FROM temp.doomed", [])?;
        let mut ins = conn.prepare_cached("INSERT INTO temp.doomed (id) VALUES (?1)")?;
        for id in &ids {
            ins.execute([id])?;
        }
        conn.execute(
            "DELETE FROM span_events WHERE span_row IN (SELECT id FROM temp.doomed)",
            [],
        )?;
        conn.execute(
            "DELETE FROM span_links WHERE span_row IN (SELECT id FROM temp.doomed)",
            [],
        )?;
        let n = conn.execute(
            "DELETE FROM spans WHERE id IN (SELECT id FROM temp.doomed)",
            [],
        )?;
        conn.execute("DELETE FROM temp.doomed", [])?;
        return Ok(n as i64);
    }
    let filter = if table == "points" {
        points_filter(conn, filter)?
    } else {
        filter.to_string()
    };
    let (key, columns) = if table.starts_with("rollup_") {
        ("(series_id, bucket_start)", "series_id, bucket_start")
    } else {
        ("id", "id")
    };
    let sql = format!(
        "DELETE FROM {table} WHERE {key} IN (SELECT {columns} FROM {table} WHERE {filter} {order} LIMIT {limit})"
    );
    Ok(conn.execute(&sql, [])? as i64)
}

/// Raw points not yet folded into the rollups must stay: deletions of `points` are limited to
/// rows at or below the watermark.
fn points_filter(conn: &Connection, filter: &str) -> rusqlite::Result<String> {
    let wm = state(conn, "rollup_watermark")?;
    Ok(format!("({filter}) AND id <= {wm}"))
}

/// Folds the next raw points after `watermark` into both rollup tables; returns the points read
/// and the last id read (`watermark` when none).
fn rollup_chunk(conn: &Connection, watermark: i64) -> rusqlite::Result<(i64, i64)> {
    let mut rollups = Rollups::default();
    let mut last_id = watermark;
    let mut n = 0;
    {
        let mut stmt = conn.prepare_cached(
            "SELECT id, series_id, time_unix_nano, value FROM points WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![watermark, ROLLUP_ROWS])?;
        while let Some(r) = rows.next()? {
            last_id = r.get(0)?;
            n += 1;
            // SQLite stores a NaN as NULL.
            let v: Option<f64> = r.get(3)?;
            rollups.add(r.get(1)?, r.get(2)?, v.unwrap_or(f64::NAN));
        }
    }
    rollups.upsert(conn)?;
    Ok((n, last_id))
}

/// Deletes a chunk of the oldest data: of the raw tables (points, histograms, summaries, spans,
/// logs), the one whose oldest row is oldest; when they are empty, the oldest minute rollups,
/// then the oldest hour rollups. Returns the rows deleted.
fn evict_oldest(conn: &Connection) -> rusqlite::Result<i64> {
    let mut oldest: Option<(i64, &str, &str)> = None;
    for &(table, column, tier) in EXPIRING {
        if matches!(tier, Tier::Minute | Tier::Hour) {
            continue;
        }
        let mut filter = "1".to_string();
        if table == "points" {
            filter = points_filter(conn, &filter)?;
        }
        let t: Option<i64> = conn
            .query_row(
                &format!("SELECT {column} FROM {table} WHERE {filter} ORDER BY {column} LIMIT 1"),
                [],
                |r| r.get(0),
            )
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        if let Some(t) = t {
            if oldest.is_none_or(|(o, _, _)| t < o) {
                oldest = Some((t, table, column));
            }
        }
    }
    if let Some((_, table, column)) = oldest {
        return delete_chunk(conn, table, "1", Some(column), EVICT_ROWS);
    }
    for table in ["rollup_minute", "rollup_hour"] {
        let n = delete_chunk(conn, table, "1", Some("bucket_start"), EVICT_ROWS)?;
        if n > 0 {
            return Ok(n);
        }
    }
    Ok(0)
}
