//! The `summary` exporter's configuration: where the report goes, how often it is rewritten, how
//! it looks, and the bounds on memory and report size.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sluice_pipeline::config::ValidationError;
use sluice_pipeline::Validate;

/// GitHub rejects a step summary over 1 MiB; the default leaves room for what else a job writes.
pub const DEFAULT_MAX_REPORT_BYTES: usize = 900 * 1024;

/// Colours of the charts and of `report.html`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    /// Dark text on white (default).
    #[default]
    Light,
    /// Light text on a dark background, for GitHub's dark mode.
    Dark,
}

/// Configuration of the `summary` exporter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummaryExporterConfig {
    /// Directory the report, the HTML page and the PNGs are written into (created with its
    /// parents). Default: the component's storage directory under `service.data_dir`.
    pub output_dir: Option<PathBuf>,
    /// Also rewrite everything at this interval while running; `0s` (default) writes only at
    /// shutdown.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub flush_interval: Duration,
    /// `light` (default) or `dark`.
    pub theme: Theme,
    /// Absolute URL under which the PNGs will be published (`<image_base_url>/cpu.png`). When set
    /// the Markdown shows the images inline; otherwise it links them by file name (GitHub strips
    /// relative and `data:` images from step summaries). Default none.
    pub image_base_url: Option<String>,
    /// Upper bound of `report.md` in bytes; the least useful sections are dropped first to stay
    /// under it. Default 921600 (900 KiB).
    pub max_report_bytes: usize,
    /// Points kept per time series; when full, neighbouring points are merged in pairs (keeping
    /// min, max and mean), halving the resolution. Default 2000, at least 16.
    pub max_points_per_series: usize,
    /// Chart width in pixels. Default 1000.
    pub width: u32,
    /// Chart height in pixels. Default 400.
    pub height: u32,
    /// Processes listed by CPU and by peak memory. Default 5.
    pub top_processes: usize,
    /// Error lines of the command output kept and shown (the last ones). Default 20.
    pub last_error_lines: usize,
    /// Steps kept (by name and start time); later ones are counted as dropped. Default 500.
    pub max_steps: usize,
    /// Report title. Default `sluice CI report`.
    pub title: String,
}

impl Default for SummaryExporterConfig {
    fn default() -> Self {
        SummaryExporterConfig {
            output_dir: None,
            flush_interval: Duration::ZERO,
            theme: Theme::Light,
            image_base_url: None,
            max_report_bytes: DEFAULT_MAX_REPORT_BYTES,
            max_points_per_series: 2000,
            width: 1000,
            height: 400,
            top_processes: 5,
            last_error_lines: 20,
            max_steps: 500,
            title: "sluice CI report".to_string(),
        }
    }
}

impl Validate for SummaryExporterConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        if self
            .output_dir
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(ValidationError::new(
                "output_dir",
                "must not be empty; leave it out to use the storage directory",
            ));
        }
        if let Some(url) = &self.image_base_url {
            if !(url.starts_with("https://") || url.starts_with("http://"))
                || url
                    .chars()
                    .any(|c| c.is_whitespace() || c == ')' || c == '"')
            {
                return Err(ValidationError::new(
                    "image_base_url",
                    "must be an absolute http:// or https:// URL without spaces, `)` or `\"`",
                ));
            }
        }
        if self.max_report_bytes < 4096 {
            return Err(ValidationError::new(
                "max_report_bytes",
                "must be at least 4096",
            ));
        }
        if self.max_points_per_series < 16 {
            return Err(ValidationError::new(
                "max_points_per_series",
                "must be at least 16",
            ));
        }
        if !(300..=4000).contains(&self.width) {
            return Err(ValidationError::new(
                "width",
                "must be between 300 and 4000",
            ));
        }
        if !(200..=4000).contains(&self.height) {
            return Err(ValidationError::new(
                "height",
                "must be between 200 and 4000",
            ));
        }
        if self.top_processes > 100 {
            return Err(ValidationError::new("top_processes", "must be at most 100"));
        }
        if self.last_error_lines > 1000 {
            return Err(ValidationError::new(
                "last_error_lines",
                "must be at most 1000",
            ));
        }
        if self.max_steps == 0 || self.max_steps > 10_000 {
            return Err(ValidationError::new(
                "max_steps",
                "must be between 1 and 10000",
            ));
        }
        Ok(())
    }
}
