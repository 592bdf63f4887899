//! Text drawn straight into the RGB buffer with `ab_glyph` and the embedded font, with proper
//! glyph bearings and kerning (plotters 0.3.7's `ab_glyph` text ignores the bearings, which
//! spaces narrow glyphs such as `1` unevenly), and rotated for the vertical axis title.

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters::style::RGBColor;

/// Horizontal anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HAlign {
    Left,
    Center,
    Right,
}

/// Vertical anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VAlign {
    Top,
    Middle,
}

/// One piece of text to draw once plotters is done with the buffer.
#[derive(Debug, Clone)]
pub struct TextJob {
    pub x: f32,
    pub y: f32,
    pub size: f32,
    pub color: RGBColor,
    pub text: String,
    pub h: HAlign,
    pub v: VAlign,
    /// Rotated 90° counter-clockwise (reads bottom to top), anchored on its rotated box.
    pub vertical: bool,
}

impl TextJob {
    /// Horizontal text.
    pub fn new(
        text: impl Into<String>,
        x: f32,
        y: f32,
        size: f32,
        color: RGBColor,
        h: HAlign,
        v: VAlign,
    ) -> TextJob {
        TextJob {
            x,
            y,
            size,
            color,
            text: text.into(),
            h,
            v,
            vertical: false,
        }
    }
}

/// A font to measure and draw with.
pub struct Painter<'f> {
    font: FontRef<'f>,
}

impl<'f> Painter<'f> {
    /// From TrueType bytes; `None` if they are not a font.
    pub fn new(bytes: &'f [u8]) -> Option<Painter<'f>> {
        FontRef::try_from_slice(bytes)
            .ok()
            .map(|font| Painter { font })
    }

    /// Width of `text` at `size` pixels.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        let f = self.font.as_scaled(PxScale::from(size));
        let mut w = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = f.glyph_id(c);
            if let Some(p) = prev {
                w += f.kern(p, id);
            }
            w += f.h_advance(id);
            prev = Some(id);
        }
        w
    }

    /// Ascent and descent (negative) at `size` pixels.
    fn metrics(&self, size: f32) -> (f32, f32) {
        let f = self.font.as_scaled(PxScale::from(size));
        (f.ascent(), f.descent())
    }

    /// Calls `plot(x, y, coverage)` for every pixel of `text` with its baseline starting at
    /// (`x`, `baseline`).
    fn raster(
        &self,
        text: &str,
        size: f32,
        x: f32,
        baseline: f32,
        mut plot: impl FnMut(i32, i32, f32),
    ) {
        let f = self.font.as_scaled(PxScale::from(size));
        let mut caret = x;
        let mut prev = None;
        for c in text.chars() {
            let id = f.glyph_id(c);
            if let Some(p) = prev {
                caret += f.kern(p, id);
            }
            let glyph = id.with_scale_and_position(size, point(caret, baseline));
            caret += f.h_advance(id);
            prev = Some(id);
            if let Some(outlined) = self.font.outline_glyph(glyph) {
                let b = outlined.px_bounds();
                let (ox, oy) = (b.min.x as i32, b.min.y as i32);
                outlined.draw(|gx, gy, cov| plot(ox + gx as i32, oy + gy as i32, cov));
            }
        }
    }

    /// Draws `job` into the `w`×`h` RGB buffer.
    pub fn draw(&self, buf: &mut [u8], w: u32, h: u32, job: &TextJob) {
        let (ascent, descent) = self.metrics(job.size);
        let text_w = self.width(&job.text, job.size);
        let text_h = ascent - descent;
        let color = [job.color.0, job.color.1, job.color.2];
        let mut put = |x: i32, y: i32, cov: f32| {
            if x < 0 || y < 0 || x >= w as i32 || y >= h as i32 {
                return;
            }
            let a = cov.clamp(0.0, 1.0);
            let i = (y as usize * w as usize + x as usize) * 3;
            if let Some(px) = buf.get_mut(i..i + 3) {
                for (p, c) in px.iter_mut().zip(color) {
                    *p = (f32::from(*p) * (1.0 - a) + f32::from(c) * a).round() as u8;
                }
            }
        };
        // The box on screen: horizontal text is text_w × text_h, vertical text_h × text_w.
        let (box_w, box_h) = if job.vertical {
            (text_h, text_w)
        } else {
            (text_w, text_h)
        };
        let left = match job.h {
            HAlign::Left => job.x,
            HAlign::Center => job.x - box_w / 2.0,
            HAlign::Right => job.x - box_w,
        };
        let top = match job.v {
            VAlign::Top => job.y,
            VAlign::Middle => job.y - box_h / 2.0,
        };
        if job.vertical {
            // Raster horizontally at the origin, then rotate: (u, v) → (left + v, top + box_h - u).
            let (l, t) = (left.round() as i32, top.round() as i32);
            let bh = box_h.round() as i32;
            self.raster(&job.text, job.size, 0.0, ascent, |u, v, cov| {
                put(l + v, t + bh - u, cov)
            });
        } else {
            self.raster(&job.text, job.size, left, top + ascent, put);
        }
    }
}
