//! The `summary` exporter: a CI job's report. It keeps what it needs from the host metrics of the
//! `procfs` receiver, the command output and step records `sluice ci` feeds through `filelog`,
//! and the `sli` processor's alerts, in memory with a bound (series halve their resolution when
//! full; statistics and a 1 % quantile sketch cover every sample). At shutdown, and every
//! `flush_interval` if set, it writes into `output_dir`, each file atomically (temporary file and
//! rename):
//!
//! - `cpu.png` (user/system/iowait/other stacked), `memory.png` (used/cached/total), `network.png`
//!   (received/transmitted bytes/s), `disk.png` (read/written bytes/s), `filesystem.png`
//!   (percent used per mount point), `steps.png` (the step timeline): plotters, `width`×`height`
//!   (default 1000×400), light or dark `theme`, wall-clock (UTC) time axes, text in the embedded
//!   DejaVu Sans (no system font, no fontconfig);
//! - `report.md`: the job identity (`GITHUB_REPOSITORY`, `GITHUB_WORKFLOW`, `GITHUB_JOB`,
//!   `GITHUB_RUN_ID`, `GITHUB_SHA`, `GITHUB_SERVER_URL`, read at report time), the steps with
//!   exit status and duration, SLI alerts, min/avg/p95/max per metric, the charts (inline when
//!   `image_base_url` is set, since GitHub strips relative and `data:` images from step
//!   summaries; linked otherwise), a Mermaid gantt of the steps (names escaped, blocks under
//!   50,000 characters), the top processes by CPU and by peak RSS, output lines per severity and
//!   the last error lines. A section that cannot be filled says why. The file stays under
//!   `max_report_bytes` (default 900 KiB; GitHub refuses step summaries over 1 MiB) by dropping
//!   the least useful sections first, each replaced by a line saying so;
//! - `report.html`: the same report as one self-contained page (PNGs as `data:` URIs, inline
//!   CSS, no script, nothing external).
//!
//! Rendering runs on a blocking thread, off the async runtime. Signals: metrics and logs.
//! Delivery: what reaches `export` is kept in memory until the last render; step records it
//! cannot use (no name or start time, or more than `max_steps`) are counted as dropped.
//!
//! ```yaml
//! exporters:
//!   summary:
//!     output_dir: ${env:SLUICE_CI_STATE_DIR}/report
//!     flush_interval: 30s
//!     theme: light
//!     # image_base_url: https://example.com/ci/${env:GITHUB_RUN_ID}
//! ```

mod charts;
mod config;
mod error;
mod escape;
mod exporter;
mod ingest;
mod report;
mod store;
pub mod synthetic;
#[cfg(test)]
mod tests;
mod text;
mod units;

pub use charts::{register_fonts, Chart, ChartOptions, Charts, Missing};
pub use config::{SummaryExporterConfig, Theme, DEFAULT_MAX_REPORT_BYTES};
pub use error::SummaryError;
pub use escape::{html as escape_html, md_cell, md_code_block, mermaid_text};
pub use exporter::{
    render_to_dir, write_atomic, RenderSettings, SummaryExporter, Written, REPORT_HTML, REPORT_MD,
};
pub use ingest::{
    ALERT_EVENT, STEP_ATTR, STEP_END_ATTR, STEP_EXIT_ATTR, STEP_SOURCE_ATTR, STEP_START_ATTR,
    TASK_NAME_ATTR,
};
pub use report::{
    build as build_report, gantt_blocks, JobIdentity, Report, ReportInput, SECTION_TITLES,
};
pub use store::{
    exact_quantile, keys, Alert, Point, Series, Sketch, Stats, Step, StepSource, StepStatus, Store,
};

use sluice_pipeline::factory::{ComponentContext, Exporter, ExporterPlugin, Stability};
use sluice_pipeline::{BuildError, Signal};

/// The factory of the `summary` exporter.
#[derive(Debug, Clone, Copy, Default)]
pub struct SummaryExporterFactory;

impl ExporterPlugin for SummaryExporterFactory {
    type Config = SummaryExporterConfig;
    const TYPE: &'static str = "summary";
    const SIGNALS: &'static [Signal] = &[Signal::Metrics, Signal::Logs];
    const STABILITY: Stability = Stability::Alpha;
    const EXAMPLE: &'static str = "flush_interval: 0s\n";

    fn build(
        &self,
        config: SummaryExporterConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Exporter>, BuildError> {
        Ok(Box::new(SummaryExporter::new(&config, &ctx)?))
    }
}

sluice_pipeline::register_exporter!(SummaryExporterFactory);
