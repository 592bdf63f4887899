//! The `summary` exporter: keeps what the report needs (bounded), and renders the charts and the
//! report on a blocking thread at every `flush_interval` and at shutdown.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_pipeline::factory::{ComponentContext, Exporter};
use sluice_pipeline::telemetry::{ComponentTelemetry, Counter};
use sluice_pipeline::{Batch, BuildError, CancellationToken, ExportError, Payload, Signal};

use super::charts::{self, ChartOptions};
use super::config::{SummaryExporterConfig, Theme};
use super::error::SummaryError;
use super::ingest;
use super::report::{self, JobIdentity, ReportInput};
use super::store::Store;

/// The report's file name.
pub const REPORT_MD: &str = "report.md";
/// The self-contained page's file name.
pub const REPORT_HTML: &str = "report.html";

/// How the files are rendered (the config minus what the store needs).
#[derive(Debug, Clone)]
pub struct RenderSettings {
    pub output_dir: PathBuf,
    pub theme: Theme,
    pub width: u32,
    pub height: u32,
    pub image_base_url: Option<String>,
    pub max_report_bytes: usize,
    pub top_processes: usize,
    pub title: String,
}

impl RenderSettings {
    /// From a validated config and the resolved output directory.
    pub fn new(config: &SummaryExporterConfig, output_dir: PathBuf) -> RenderSettings {
        RenderSettings {
            output_dir,
            theme: config.theme,
            width: config.width,
            height: config.height,
            image_base_url: config.image_base_url.clone(),
            max_report_bytes: config.max_report_bytes,
            top_processes: config.top_processes,
            title: config.title.clone(),
        }
    }
}

/// What one render wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Bytes of `report.md`.
    pub markdown_bytes: usize,
    /// Chart files written.
    pub charts: Vec<&'static str>,
    /// Sections dropped from the Markdown to meet `max_report_bytes`.
    pub dropped_sections: Vec<&'static str>,
}

/// Writes `bytes` to `dir/name` through a temporary file in the same directory and a rename, so
/// a reader sees the old file or the new one, never a part.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SummaryError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        SummaryError::Write {
            path: path.clone(),
            source,
        }
    })
}

/// Renders the charts and both documents from `store` into `settings.output_dir`: PNGs first,
/// then `report.html`, then `report.md`, each atomically.
pub fn render_to_dir(
    store: &Store,
    settings: &RenderSettings,
    identity: &JobIdentity,
    now_nanos: i64,
) -> Result<Written, SummaryError> {
    let dir = &settings.output_dir;
    std::fs::create_dir_all(dir).map_err(|source| SummaryError::CreateDir {
        path: dir.clone(),
        source,
    })?;
    let charts = charts::render(
        store,
        now_nanos,
        ChartOptions {
            width: settings.width,
            height: settings.height,
            theme: settings.theme,
        },
    )?;
    for c in &charts.drawn {
        write_atomic(dir, c.file, &c.png)?;
    }
    let report = report::build(&ReportInput {
        store,
        charts: &charts,
        identity,
        title: &settings.title,
        image_base_url: settings.image_base_url.as_deref(),
        top_processes: settings.top_processes,
        max_report_bytes: settings.max_report_bytes,
        theme: settings.theme,
        now_nanos,
    });
    write_atomic(dir, REPORT_HTML, report.html.as_bytes())?;
    write_atomic(dir, REPORT_MD, report.markdown.as_bytes())?;
    Ok(Written {
        markdown_bytes: report.markdown.len(),
        charts: charts.drawn.iter().map(|c| c.file).collect(),
        dropped_sections: report.dropped,
    })
}

struct Shared {
    store: Mutex<Store>,
    /// Serialises renders (a timer render and the shutdown render must not interleave files).
    render_lock: Mutex<()>,
    settings: RenderSettings,
    max_steps: usize,
    keep_errors: usize,
    telemetry: ComponentTelemetry,
    renders: Counter,
    render_failures: Counter,
    id: String,
}

impl Shared {
    fn lock_store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Snapshots the store and renders on a blocking thread.
    async fn render(self: &Arc<Self>, why: &'static str) -> Result<Written, SummaryError> {
        let this = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let _serial = this.render_lock.lock().unwrap_or_else(|p| p.into_inner());
            let snapshot = this.lock_store().clone();
            let started = std::time::Instant::now();
            let r = render_to_dir(
                &snapshot,
                &this.settings,
                &JobIdentity::from_env(),
                sluice_pipeline::otlp::now_nanos() as i64,
            );
            (r, started.elapsed())
        })
        .await;
        let (result, took) = match result {
            Ok(v) => v,
            Err(e) => (Err(SummaryError::Task(e.to_string())), Duration::ZERO),
        };
        match &result {
            Ok(w) => {
                self.renders.add(1);
                tracing::info!(
                    component_kind = "exporter",
                    component_id = %self.id,
                    reason = why,
                    output_dir = %self.settings.output_dir.display(),
                    markdown_bytes = w.markdown_bytes,
                    charts = w.charts.len(),
                    dropped_sections = ?w.dropped_sections,
                    took_ms = took.as_millis() as u64,
                    "Wrote the summary report."
                );
            }
            Err(e) => {
                self.render_failures.add(1);
                tracing::error!(
                    component_kind = "exporter",
                    component_id = %self.id,
                    reason = why,
                    error = %e,
                    "Could not write the summary report."
                );
            }
        }
        result
    }
}

/// Collects metrics and logs into a bounded store; writes the report on a timer and at shutdown.
pub struct SummaryExporter {
    shared: Arc<Shared>,
    flush_interval: Duration,
    stop: CancellationToken,
    timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl SummaryExporter {
    /// Prepares the exporter; the output directory is created in `start`.
    pub fn new(config: &SummaryExporterConfig, ctx: &ComponentContext) -> Result<Self, BuildError> {
        let output_dir = match &config.output_dir {
            Some(d) => d.clone(),
            None => ctx.storage_dir()?,
        };
        charts::register_fonts().map_err(|e| BuildError::Other(e.to_string()))?;
        let t = &ctx.telemetry;
        Ok(SummaryExporter {
            shared: Arc::new(Shared {
                store: Mutex::new(Store::new(config.max_points_per_series)),
                render_lock: Mutex::new(()),
                settings: RenderSettings::new(config, output_dir),
                max_steps: config.max_steps,
                keep_errors: config.last_error_lines,
                renders: t.counter_named("sluice_exporter_summary_renders"),
                render_failures: t.counter_named("sluice_exporter_summary_render_failures"),
                telemetry: t.clone(),
                id: ctx.id.to_string(),
            }),
            flush_interval: config.flush_interval,
            stop: CancellationToken::new(),
            timer: Mutex::new(None),
        })
    }

    /// Where the files go.
    pub fn output_dir(&self) -> &Path {
        &self.shared.settings.output_dir
    }

    /// Renders now (what the timer and `shutdown` do).
    pub async fn render_now(&self) -> Result<Written, SummaryError> {
        self.shared.render("requested").await
    }

    /// Adds one batch to the store (what `export` does).
    pub fn ingest(&self, batch: &Batch) {
        let shared = &self.shared;
        match &batch.payload {
            Payload::Metrics(m) => ingest::metrics(&mut shared.lock_store(), m),
            Payload::Logs(l) => {
                let found = ingest::logs(
                    &mut shared.lock_store(),
                    l,
                    shared.max_steps,
                    shared.keep_errors,
                );
                shared.telemetry.dropped(
                    Signal::Logs,
                    found.bad_steps,
                    "step record without a name or start time, or more than max_steps steps",
                );
            }
            Payload::Traces(_) => {}
        }
    }
}

#[async_trait::async_trait]
impl Exporter for SummaryExporter {
    async fn start(&mut self) -> Result<(), BuildError> {
        let dir = &self.shared.settings.output_dir;
        std::fs::create_dir_all(dir).map_err(|e| {
            BuildError::io(
                format!("cannot create output directory {}", dir.display()),
                e,
            )
        })?;
        if !self.flush_interval.is_zero() {
            let shared = self.shared.clone();
            let stop = self.stop.clone();
            let every = self.flush_interval;
            let handle = tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {
                            // Failures are logged and counted inside; the next tick retries.
                            let _ = shared.render("flush_interval").await;
                        }
                    }
                }
            });
            *self.timer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        }
        Ok(())
    }

    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        if let Payload::Traces(_) = &batch.payload {
            // The pipeline graph only wires metrics and logs to us.
            return Err(ExportError::permanent(
                "the summary exporter takes metrics and logs, not traces",
            ));
        }
        self.ingest(batch);
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ExportError> {
        self.stop.cancel();
        let timer = self.timer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = timer {
            // The timer stops at its next select; a render in progress finishes first.
            let _ = t.await;
        }
        self.shared
            .render("shutdown")
            .await
            .map(|_| ())
            .map_err(|e| ExportError::permanent(e.to_string()))
    }
}
