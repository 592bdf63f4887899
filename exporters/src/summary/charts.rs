//! The PNG charts, drawn with plotters into an RGB buffer and encoded with `png`. Text uses the
//! embedded DejaVu Sans (registered once with plotters' `ab_glyph` backend): no system font, no
//! fontconfig.

use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::text::{HAlign, Painter, TextJob, VAlign};

use super::config::Theme;
use super::error::SummaryError;
use super::store::{keys, Point, Series, Step, StepStatus, Store};
use super::units::{byte_unit, clock, duration};

/// DejaVu Sans (Bitstream Vera licence, `fonts/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
/// The family name the charts ask plotters for.
const FAMILY: &str = "sans-serif";

/// Registers the embedded font under [`FAMILY`] (normal and bold), once.
pub fn register_fonts() -> Result<(), SummaryError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        register_font(FAMILY, FontStyle::Normal, FONT).is_ok()
            && register_font(FAMILY, FontStyle::Bold, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(SummaryError::Font)
    }
}

/// One rendered chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Stable file name (`cpu.png`).
    pub file: &'static str,
    /// Title, also the image's alt text.
    pub title: String,
    /// The PNG file's bytes.
    pub png: Vec<u8>,
}

/// A chart that could not be drawn, and why (shown in the report).
#[derive(Debug, Clone, PartialEq)]
pub struct Missing {
    pub file: &'static str,
    pub title: &'static str,
    pub why: String,
}

/// The charts, in report order, with the ones that could not be drawn.
#[derive(Debug, Clone, Default)]
pub struct Charts {
    pub drawn: Vec<Chart>,
    pub missing: Vec<Missing>,
}

struct Palette {
    bg: RGBColor,
    fg: RGBColor,
    grid: RGBColor,
    series: [RGBColor; 6],
    other: RGBColor,
    ok: RGBColor,
    failed: RGBColor,
    running: RGBColor,
}

/// A theme's colours (GitHub Primer), as `0xRRGGBB`, in the order of [`palette`].
const LIGHT: [u32; 13] = [
    0xffffff, 0x24292f, 0xd8dee4, // background, text, grid
    0x0969da, 0xbc4c00, 0x8250df, 0x1a7f37, 0xcf222e, 0x9a6700, // the series
    0x8c959f, 0x1a7f37, 0xcf222e, 0xbf8700, // other, succeeded, failed, running
];
const DARK: [u32; 13] = [
    0x0d1117, 0xe6edf3, 0x30363d, // background, text, grid
    0x58a6ff, 0xf0883e, 0xbc8cff, 0x3fb950, 0xf85149, 0xd29922, // the series
    0x6e7681, 0x3fb950, 0xf85149, 0xd29922, // other, succeeded, failed, running
];

fn palette(theme: Theme) -> Palette {
    let c = match theme {
        Theme::Light => LIGHT,
        Theme::Dark => DARK,
    }
    .map(|hex| {
        let [_, r, g, b] = hex.to_be_bytes();
        RGBColor(r, g, b)
    });
    Palette {
        bg: c[0],
        fg: c[1],
        grid: c[2],
        series: [c[3], c[4], c[5], c[6], c[7], c[8]],
        other: c[9],
        ok: c[10],
        failed: c[11],
        running: c[12],
    }
}

/// Options of one render.
#[derive(Debug, Clone, Copy)]
pub struct ChartOptions {
    pub width: u32,
    pub height: u32,
    pub theme: Theme,
}

fn err(file: &'static str) -> impl Fn(String) -> SummaryError {
    move |reason| SummaryError::Chart { name: file, reason }
}

/// Encodes an RGB buffer as PNG.
fn encode(file: &'static str, buf: &[u8], w: u32, h: u32) -> Result<Vec<u8>, SummaryError> {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().map_err(|e| err(file)(e.to_string()))?;
    writer
        .write_image_data(buf)
        .map_err(|e| err(file)(e.to_string()))?;
    writer.finish().map_err(|e| err(file)(e.to_string()))?;
    Ok(out)
}

/// One line or area of a time chart.
struct Line<'a> {
    label: String,
    points: Vec<(f64, f64)>,
    /// (time, min, max) of each merged point, once the series was downsampled: drawn as a band
    /// so short peaks stay visible.
    band: Vec<(f64, f64, f64)>,
    color: &'a RGBColor,
}

enum Kind {
    /// Lines over each other.
    Lines,
    /// Areas stacked in order (the first at the bottom).
    Stacked,
}

struct TimeChart<'a> {
    file: &'static str,
    title: String,
    y_desc: String,
    y_max: Option<f64>,
    kind: Kind,
    lines: Vec<Line<'a>>,
}

fn means(s: &Series, scale: f64) -> Vec<(f64, f64)> {
    s.points().iter().map(|p| (p.t, p.mean / scale)).collect()
}

fn band(s: &Series, scale: f64) -> Vec<(f64, f64, f64)> {
    if s.downsamples == 0 {
        return Vec::new();
    }
    s.points()
        .iter()
        .map(|p| (p.t, p.min / scale, p.max / scale))
        .collect()
}

/// The mean of `s` nearest to `t` (series pushed together share their times).
fn value_at(points: &[Point], t: f64) -> f64 {
    let i = points.partition_point(|p| p.t < t);
    let cand = [i.checked_sub(1), Some(i)];
    cand.iter()
        .flatten()
        .filter_map(|&j| points.get(j))
        .min_by(|a, b| (a.t - t).abs().total_cmp(&(b.t - t).abs()))
        .map_or(0.0, |p| p.mean)
}

type Chart2d<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Wall-clock ticks every 1 s … 1 day, at most about 8 over the span; whether they need seconds.
fn time_ticks(x0: f64, x1: f64) -> (Vec<f64>, bool) {
    const STEPS: [f64; 18] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        10800.0, 21600.0, 43200.0, 86400.0,
    ];
    let span = (x1 - x0).max(1e-9);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 8.0)
        .unwrap_or(86400.0);
    let mut t = (x0 / step).ceil() * step;
    let mut ticks = Vec::new();
    while t <= x1 + 1e-6 && ticks.len() < 64 {
        ticks.push(t);
        t += step;
    }
    (ticks, step < 60.0)
}

/// Round value ticks from 0 to at least `top` (about 5), and the rounded top.
fn value_ticks(top: f64) -> (Vec<f64>, f64) {
    let top = if top.is_finite() && top > 0.0 {
        top
    } else {
        1.0
    };
    let raw = top / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| top / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let top = (top / step - 1e-9).ceil() * step;
    let n = (top / step).round() as usize;
    ((0..=n).map(|i| i as f64 * step).collect(), top)
}

fn tick_label(v: f64, step: f64) -> String {
    if step >= 1.0 || v == 0.0 {
        format!("{v:.0}")
    } else if step >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Builds the plot area with room for the title, tick labels and axis titles.
fn frame<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    x: (f64, f64),
    y_top: f64,
    (top_room, left_room): (u32, u32),
) -> Result<Chart2d<'a, 'b>, String> {
    ChartBuilder::on(root)
        .margin_top(top_room)
        .margin_right(24)
        .margin_left(10)
        .margin_bottom(8)
        .x_label_area_size(52)
        .y_label_area_size(left_room)
        .build_cartesian_2d(x.0..x.1, 0f64..y_top)
        .map_err(|e| e.to_string())
}

/// Axes, grid lines at `y_ticks` and the time ticks, their labels, the title and axis titles.
#[allow(clippy::too_many_arguments)]
fn decorate(
    chart: &mut Chart2d<'_, '_>,
    pal: &Palette,
    width: u32,
    title: &str,
    y_desc: Option<&str>,
    y_ticks: &[f64],
    y_labels: bool,
    (x0, x1): (f64, f64),
    texts: &mut Vec<TextJob>,
) -> Result<(), String> {
    let fg = pal.fg;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .axis_style(fg.mix(0.55))
        .draw()
        .map_err(|e| e.to_string())?;
    let y_top = y_ticks.last().copied().unwrap_or(1.0);
    let (xt, with_seconds) = time_ticks(x0, x1);
    for &t in &xt {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(t, 0.0), (t, y_top)],
                pal.grid,
            )))
            .map_err(|e| e.to_string())?;
        let (px, py) = chart.backend_coord(&(t, 0.0));
        let label = if with_seconds {
            clock(t)
        } else {
            clock(t)[..5].to_string()
        };
        texts.push(TextJob::new(
            label,
            px as f32,
            py as f32 + 8.0,
            14.0,
            fg,
            HAlign::Center,
            VAlign::Top,
        ));
    }
    let step = if y_ticks.len() > 1 {
        y_ticks[1] - y_ticks[0]
    } else {
        1.0
    };
    for &v in y_ticks {
        if v > 0.0 {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x0, v), (x1, v)],
                    pal.grid,
                )))
                .map_err(|e| e.to_string())?;
        }
        if !y_labels {
            continue;
        }
        let (px, py) = chart.backend_coord(&(x0, v));
        texts.push(TextJob::new(
            tick_label(v, step),
            px as f32 - 8.0,
            py as f32,
            14.0,
            fg,
            HAlign::Right,
            VAlign::Middle,
        ));
    }
    let (left, bottom) = chart.backend_coord(&(x0, 0.0));
    let (right, top) = chart.backend_coord(&(x1, y_top));
    texts.push(TextJob::new(
        title,
        width as f32 / 2.0,
        12.0,
        21.0,
        fg,
        HAlign::Center,
        VAlign::Top,
    ));
    texts.push(TextJob::new(
        "Time (UTC)",
        (left + right) as f32 / 2.0,
        bottom as f32 + 30.0,
        15.0,
        fg,
        HAlign::Center,
        VAlign::Top,
    ));
    if let Some(d) = y_desc {
        let mut job = TextJob::new(
            d,
            12.0,
            (top + bottom) as f32 / 2.0,
            15.0,
            fg,
            HAlign::Left,
            VAlign::Middle,
        );
        job.vertical = true;
        texts.push(job);
    }
    Ok(())
}

/// The legend: one row of swatches and labels between the title and the plot, so it never
/// hides data.
fn legend(
    root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    chart: &Chart2d<'_, '_>,
    painter: &Painter<'_>,
    pal: &Palette,
    entries: &[(String, RGBColor)],
    (x0, y_top): (f64, f64),
    texts: &mut Vec<TextJob>,
) -> Result<(), String> {
    let (left, top) = chart.backend_coord(&(x0, y_top));
    let cy = top - 14;
    let mut x = left;
    for (label, color) in entries {
        root.draw(&Rectangle::new(
            [(x, cy - 6), (x + 16, cy + 6)],
            color.filled(),
        ))
        .map_err(|e| e.to_string())?;
        texts.push(TextJob::new(
            label.clone(),
            (x + 22) as f32,
            cy as f32,
            14.0,
            pal.fg,
            HAlign::Left,
            VAlign::Middle,
        ));
        x += 22 + painter.width(label, 14.0).ceil() as i32 + 24;
    }
    Ok(())
}

/// `c` blended over `bg` with opacity `a`, as an opaque colour (stacked areas stay true).
fn tint(c: RGBColor, bg: RGBColor, a: f64) -> RGBColor {
    let m = |x: u8, y: u8| (f64::from(x) * a + f64::from(y) * (1.0 - a)).round() as u8;
    RGBColor(m(c.0, bg.0), m(c.1, bg.1), m(c.2, bg.2))
}

/// The points without those that land on the same pixel as the previous one: plotters joins
/// thick lines with miters computed from each segment's direction, and a zero-length segment
/// sends them off the chart.
fn distinct_pixels(chart: &Chart2d<'_, '_>, points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(points.len());
    let mut last = None;
    for &p in points {
        let px = chart.backend_coord(&p);
        if last != Some(px) {
            out.push(p);
            last = Some(px);
        }
    }
    out
}

fn painter() -> Result<Painter<'static>, SummaryError> {
    Painter::new(FONT).ok_or(SummaryError::Font)
}

fn draw_time_chart(
    c: &TimeChart<'_>,
    x_range: (f64, f64),
    opts: ChartOptions,
    pal: &Palette,
) -> Result<Vec<u8>, SummaryError> {
    let (w, h) = (opts.width, opts.height);
    let mut buf = vec![0u8; (w as usize) * (h as usize) * 3];
    let e = err(c.file);
    let painter = painter()?;
    let mut texts = Vec::new();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&pal.bg).map_err(|x| e(x.to_string()))?;
        let data_max = match c.kind {
            Kind::Lines => c
                .lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
                .fold(0.0f64, f64::max),
            Kind::Stacked => 0.0,
        };
        let (y_ticks, y_top) = value_ticks(c.y_max.unwrap_or(data_max * 1.08));
        let (x0, mut x1) = x_range;
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let left_room = 30
            + y_ticks
                .iter()
                .map(|v| painter.width(&tick_label(*v, y_top / 5.0), 14.0).ceil() as u32)
                .max()
                .unwrap_or(20)
            + 14;
        let mut chart = frame(&root, (x0, x1), y_top, (70, left_room)).map_err(&e)?;
        decorate(
            &mut chart,
            pal,
            w,
            &c.title,
            Some(&c.y_desc),
            &y_ticks,
            true,
            (x0, x1),
            &mut texts,
        )
        .map_err(&e)?;
        let mut entries = Vec::new();
        match c.kind {
            Kind::Lines => {
                for l in c.lines.iter().filter(|l| l.band.len() > 1) {
                    let mut outline: Vec<(f64, f64)> = l
                        .band
                        .iter()
                        .map(|&(t, _, hi)| (t, hi.min(y_top)))
                        .collect();
                    outline.extend(l.band.iter().rev().map(|&(t, lo, _)| (t, lo)));
                    chart
                        .draw_series(std::iter::once(Polygon::new(
                            outline,
                            tint(*l.color, pal.bg, 0.22).filled(),
                        )))
                        .map_err(|x| e(x.to_string()))?;
                }
                for l in &c.lines {
                    let color = *l.color;
                    chart
                        .draw_series(LineSeries::new(
                            distinct_pixels(&chart, &l.points),
                            color.stroke_width(2),
                        ))
                        .map_err(|x| e(x.to_string()))?;
                    entries.push((l.label.clone(), color));
                }
            }
            Kind::Stacked => {
                // Cumulative tops, drawn from the top layer down so lower layers cover them.
                let base = c
                    .lines
                    .first()
                    .map(|l| l.points.clone())
                    .unwrap_or_default();
                let mut tops: Vec<Vec<(f64, f64)>> = Vec::new();
                let mut acc: Vec<(f64, f64)> = base.iter().map(|&(t, _)| (t, 0.0)).collect();
                for l in &c.lines {
                    let pts: Vec<Point> =
                        l.points.iter().map(|&(t, v)| Point::sample(t, v)).collect();
                    for a in acc.iter_mut() {
                        a.1 = (a.1 + value_at(&pts, a.0)).min(y_top);
                    }
                    tops.push(acc.clone());
                }
                // Fills without a border (plotters' thick area borders stray outside the plot
                // at steep edges), then the tops as lines.
                for (l, top) in c.lines.iter().zip(&tops).rev() {
                    let color = *l.color;
                    chart
                        .draw_series(AreaSeries::new(
                            top.iter().copied(),
                            0.0,
                            tint(color, pal.bg, 0.6),
                        ))
                        .map_err(|x| e(x.to_string()))?;
                    entries.push((l.label.clone(), color));
                }
                // Bottom layer first, as read left to right.
                entries.reverse();
                for (l, top) in c.lines.iter().zip(&tops) {
                    chart
                        .draw_series(LineSeries::new(
                            distinct_pixels(&chart, top),
                            l.color.stroke_width(1),
                        ))
                        .map_err(|x| e(x.to_string()))?;
                }
            }
        }
        legend(
            &root,
            &chart,
            &painter,
            pal,
            &entries,
            (x0, y_top),
            &mut texts,
        )
        .map_err(&e)?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    for t in &texts {
        painter.draw(&mut buf, w, h, t);
    }
    encode(c.file, &buf, w, h)
}

fn draw_steps(
    steps: &[&Step],
    now_nanos: i64,
    opts: ChartOptions,
    pal: &Palette,
) -> Result<Vec<u8>, SummaryError> {
    const FILE: &str = "steps.png";
    let e = err(FILE);
    let painter = painter()?;
    let mut texts = Vec::new();
    let n = steps.len().max(1);
    let w = opts.width;
    let h = (110 + 30 * n as u32).clamp(opts.height.min(240), 4000);
    let mut buf = vec![0u8; (w as usize) * (h as usize) * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&pal.bg).map_err(|x| e(x.to_string()))?;
        let t0 = steps.iter().map(|s| s.start_unix_nano).min().unwrap_or(0) as f64 / 1e9;
        let t1 = steps
            .iter()
            .map(|s| s.end_unix_nano.unwrap_or(now_nanos).max(s.start_unix_nano))
            .max()
            .unwrap_or(0) as f64
            / 1e9;
        let x1 = if t1 > t0 {
            t1 + (t1 - t0) * 0.01
        } else {
            t0 + 1.0
        };
        let span = x1 - t0;
        let mut chart = frame(&root, (t0, x1), n as f64, (46, 16)).map_err(&e)?;
        decorate(
            &mut chart,
            pal,
            w,
            "Steps (green: succeeded, red: failed, amber: running)",
            None,
            &[0.0, n as f64],
            false,
            (t0, x1),
            &mut texts,
        )
        .map_err(&e)?;
        let (plot_right, _) = chart.backend_coord(&(x1, 0.0));
        for (i, s) in steps.iter().enumerate() {
            let color = match s.status() {
                StepStatus::Succeeded => pal.ok,
                StepStatus::Failed => pal.failed,
                StepStatus::Running => pal.running,
            };
            // First step on top.
            let y = (n - 1 - i) as f64;
            let start = s.start_unix_nano as f64 / 1e9;
            let end = s.end_unix_nano.unwrap_or(now_nanos).max(s.start_unix_nano) as f64 / 1e9;
            let end = end.max(start + span / 500.0);
            chart
                .draw_series([
                    Rectangle::new(
                        [(start, y + 0.14), (end, y + 0.86)],
                        tint(color, pal.bg, 0.3).filled(),
                    ),
                    Rectangle::new([(start, y + 0.14), (end, y + 0.86)], color.stroke_width(2)),
                ])
                .map_err(|x| e(x.to_string()))?;
            let name: String = s
                .name
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(60)
                .collect();
            let status = match s.status() {
                StepStatus::Succeeded => String::new(),
                StepStatus::Failed => format!(
                    ", exit {}",
                    s.exit_code.map_or("?".to_string(), |c| c.to_string())
                ),
                StepStatus::Running => ", running".to_string(),
            };
            let label = format!("{name} ({}{status})", duration(s.duration_secs(now_nanos)));
            let label_w = painter.width(&label, 14.0);
            let (bx0, by) = chart.backend_coord(&(start, y + 0.5));
            let (bx1, _) = chart.backend_coord(&(end, y + 0.5));
            let job = if bx0 as f32 + 6.0 + label_w <= plot_right as f32 {
                TextJob::new(
                    label,
                    bx0 as f32 + 6.0,
                    by as f32,
                    14.0,
                    pal.fg,
                    HAlign::Left,
                    VAlign::Middle,
                )
            } else if bx1 as f32 - 6.0 - label_w >= 20.0 {
                TextJob::new(
                    label,
                    bx1 as f32 - 6.0,
                    by as f32,
                    14.0,
                    pal.fg,
                    HAlign::Right,
                    VAlign::Middle,
                )
            } else {
                TextJob::new(
                    label,
                    20.0,
                    by as f32,
                    14.0,
                    pal.fg,
                    HAlign::Left,
                    VAlign::Middle,
                )
            };
            texts.push(job);
        }
        root.present().map_err(|x| e(x.to_string()))?;
    }
    for t in &texts {
        painter.draw(&mut buf, w, h, t);
    }
    encode(FILE, &buf, w, h)
}

/// The largest value of any of `keys` in the store (0 when none has data).
fn max_of(store: &Store, keys: &[&str]) -> f64 {
    keys.iter()
        .filter_map(|k| store.get(k))
        .map(|s| s.stats.max)
        .fold(0.0, f64::max)
}

/// A line, divided by `div`, with its min–max band, for each `(key, label, colour)` the store
/// has data of.
fn banded_lines<'a, const N: usize>(
    store: &Store,
    div: f64,
    specs: [(&str, &str, &'a RGBColor); N],
) -> Vec<Line<'a>> {
    specs
        .into_iter()
        .filter_map(|(key, label, color)| {
            let series = store.get(key)?;
            Some(Line {
                label: label.to_string(),
                points: means(series, div),
                band: band(series, div),
                color,
            })
        })
        .collect()
}

/// Draws every chart the data allows; says why for the others.
pub fn render(store: &Store, now_nanos: i64, opts: ChartOptions) -> Result<Charts, SummaryError> {
    register_fonts()?;
    let pal = palette(opts.theme);
    let mut out = Charts::default();
    let x_range = (store.first_t.unwrap_or(0.0), store.last_t.unwrap_or(0.0));
    let procfs_hint = "is the `procfs` receiver in the metrics pipeline?";
    let s = &pal.series;

    // CPU: stacked user/system/iowait.
    let mut cpu = Vec::new();
    for (key, label, color) in [
        (keys::CPU_USER, "user", &s[0]),
        (keys::CPU_SYSTEM, "system", &s[1]),
        (keys::CPU_IOWAIT, "iowait", &s[2]),
        (keys::CPU_OTHER, "other (nice, irq, steal)", &pal.other),
    ] {
        if let Some(series) = store.get(key) {
            cpu.push(Line {
                label: label.to_string(),
                points: means(series, 1.0),
                band: Vec::new(),
                color,
            });
        }
    }
    push_chart(
        &mut out,
        TimeChart {
            file: "cpu.png",
            title: "CPU utilization (all cores, stacked)".to_string(),
            y_desc: "CPU (%)".to_string(),
            y_max: Some(100.0),
            kind: Kind::Stacked,
            lines: cpu,
        },
        "CPU utilization",
        format!("no `system.cpu.utilization` points were received ({procfs_hint})"),
        x_range,
        opts,
        &pal,
    )?;

    // Memory.
    let (div, unit) = byte_unit(max_of(
        store,
        &[keys::MEM_USED, keys::MEM_CACHED, keys::MEM_TOTAL],
    ));
    let mem = banded_lines(
        store,
        div,
        [
            (keys::MEM_USED, "used", &s[0]),
            (keys::MEM_CACHED, "cached", &s[3]),
            (keys::MEM_TOTAL, "total", &s[4]),
        ],
    );
    push_chart(
        &mut out,
        TimeChart {
            file: "memory.png",
            title: "Memory".to_string(),
            y_desc: format!("Memory ({unit})"),
            y_max: None,
            kind: Kind::Lines,
            lines: mem,
        },
        "Memory",
        format!("no `system.memory.usage` points were received ({procfs_hint})"),
        x_range,
        opts,
        &pal,
    )?;

    for (file, title, what, metric, rx, tx) in [
        (
            "network.png",
            "Network I/O (all interfaces but lo)",
            ["received", "transmitted"],
            "system.network.io.rate",
            keys::NET_RX,
            keys::NET_TX,
        ),
        (
            "disk.png",
            "Disk I/O (all disks)",
            ["read", "written"],
            "system.disk.io.rate",
            keys::DISK_READ,
            keys::DISK_WRITE,
        ),
    ] {
        let (div, unit) = byte_unit(max_of(store, &[rx, tx]));
        let lines = banded_lines(store, div, [(rx, what[0], &s[0]), (tx, what[1], &s[1])]);
        push_chart(
            &mut out,
            TimeChart {
                file,
                title: title.to_string(),
                y_desc: format!("Throughput ({unit}/s)"),
                y_max: None,
                kind: Kind::Lines,
                lines,
            },
            if file == "disk.png" {
                "Disk I/O"
            } else {
                "Network I/O"
            },
            format!("no `{metric}` points were received ({procfs_hint}; rates need two scrapes)"),
            x_range,
            opts,
            &pal,
        )?;
    }

    let fs: Vec<Line<'_>> = store
        .filesystems()
        .enumerate()
        .map(|(i, (mount, series))| Line {
            label: mount.chars().take(40).collect(),
            points: means(series, 1.0),
            band: band(series, 1.0),
            color: &s[i % s.len()],
        })
        .collect();
    push_chart(
        &mut out,
        TimeChart {
            file: "filesystem.png",
            title: "Filesystem usage".to_string(),
            y_desc: "Used (%)".to_string(),
            y_max: Some(100.0),
            kind: Kind::Lines,
            lines: fs,
        },
        "Filesystem usage",
        format!("no `system.filesystem.utilization` points were received ({procfs_hint})"),
        x_range,
        opts,
        &pal,
    )?;

    let steps = store.steps.effective();
    if steps.is_empty() {
        out.missing.push(Missing {
            file: "steps.png",
            title: "Steps",
            why: "no step records were received (steps are recorded by `sluice ci step`)"
                .to_string(),
        });
    } else {
        out.drawn.push(Chart {
            file: "steps.png",
            title: "Steps".to_string(),
            png: draw_steps(&steps, now_nanos, opts, &pal)?,
        });
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn push_chart(
    out: &mut Charts,
    chart: TimeChart<'_>,
    short: &'static str,
    why_missing: String,
    x_range: (f64, f64),
    opts: ChartOptions,
    pal: &Palette,
) -> Result<(), SummaryError> {
    if chart.lines.iter().all(|l| l.points.is_empty()) {
        out.missing.push(Missing {
            file: chart.file,
            title: short,
            why: why_missing,
        });
        return Ok(());
    }
    let png = draw_time_chart(&chart, x_range, opts, pal)?;
    out.drawn.push(Chart {
        file: chart.file,
        title: chart.title,
        png,
    });
    Ok(())
}
