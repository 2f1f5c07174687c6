//! Training curves as SVG, and the chart plumbing shared with `walkforward::charts`.
//!
//! `sim-train plot --run-dir DIR` reads `metrics.jsonl` and draws one panel per recorded
//! metric against environment steps, in a single self-contained file that any browser
//! opens. Charts are drawn with plotters' SVG backend and no font support: text uses the
//! generic `sans-serif` family, and layout uses plotters' built-in estimate of text sizes
//! (no system fonts are read, so the same input gives the same bytes on every machine).
//!
//! The plumbing is used by the walk-forward charts as well:
//!
//! * [`svg_document`] draws a chart on a white background and finishes the document: a
//!   `<title>`, a `class` attribute on data elements ([`Class`]) and tooltips on bars. A
//!   drawing error gives a document with an error note instead of a panic.
//! * [`Scale`] is a linear plotters coordinate with ticks and tick labels chosen here
//!   ([`Scale::nice`], [`Scale::exact`], [`Scale::with_ticks`]): values outside its range
//!   are clamped to it, so nothing is drawn outside its plot area, and no input (huge,
//!   tiny or degenerate ranges) can make plotters' own tick search misbehave.
//! * [`PALETTE`], [`text`] and [`text_width`]: colors and text styles.

use crate::error::{Error, IoContext, Result};
use crate::util::text::escape_html as escape;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The panels drawn, in order.
pub const PANELS: &[&str] = &[
    "charts/episode_return",
    "trading/pnl",
    "trading/win_rate",
    "trading/trades",
    "losses/policy",
    "losses/value",
    "losses/entropy",
    "losses/approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
    "charts/sps",
    "charts/lr",
];

/// A metric's name and its (global_step, value) points.
pub type Curve = (String, Vec<(f64, f64)>);

/// Reads a run's `metrics.jsonl`: (global_step, value) points per panel key, skipping
/// nulls.
pub fn read_curves(run_dir: &Path) -> Result<Vec<Curve>> {
    let path = run_dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).at(&path)?;
    let mut curves: Vec<Curve> = PANELS.iter().map(|k| (k.to_string(), Vec::new())).collect();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::input(&path, format!("line {}: not JSON: {e}", i + 1)))?;
        let x = v
            .get("global_step")
            .and_then(|x| x.as_f64())
            .ok_or_else(|| Error::input(&path, format!("line {}: no global_step", i + 1)))?;
        for (k, pts) in &mut curves {
            if let Some(y) = v.get(k.as_str()).and_then(|y| y.as_f64()) {
                pts.push((x, y));
            }
        }
    }
    if curves.iter().all(|(_, p)| p.is_empty()) {
        return Err(Error::input(
            &path,
            "holds no update records yet: plot after at least one update",
        ));
    }
    Ok(curves)
}

/// Draws `training.svg` into `out`; returns the files written.
pub fn plot_run(run_dir: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let curves = read_curves(run_dir)?;
    let svg = render(&curves, &run_dir.display().to_string());
    std::fs::create_dir_all(out).at(out)?;
    let file = out.join("training.svg");
    crate::util::fs::write_atomic(&file, svg.as_bytes())?;
    Ok(vec![file])
}

/// Panels per row of the training chart.
const COLS: usize = 3;
/// Size of one panel.
const PANEL_W: u32 = 380;
const PANEL_H: u32 = 240;
/// Height of the title row.
const TITLE_H: u32 = 34;
/// Height of the footnote row naming the metrics without data.
const NOTE_H: u32 = 24;

/// The SVG document of a grid of panels, one per curve with finite points (in the order
/// given), each a line of value against environment steps (class `series`). Non-finite
/// points are skipped; curves without any are named in a footnote, and when no curve has
/// data a single "no data" panel is drawn.
pub fn render(curves: &[Curve], title: &str) -> String {
    let finite: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|(name, pts)| {
            let pts = pts
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            (name.as_str(), pts)
        })
        .collect();
    let drawn: Vec<&(&str, Vec<(f64, f64)>)> =
        finite.iter().filter(|(_, p)| !p.is_empty()).collect();
    let empty: Vec<&str> = finite
        .iter()
        .filter(|(_, p)| p.is_empty())
        .map(|(n, _)| *n)
        .collect();
    let panels = drawn.len().max(1);
    let (cols, rows) = (panels.min(COLS), panels.div_ceil(COLS));
    let note_h = if empty.is_empty() || drawn.is_empty() {
        0
    } else {
        NOTE_H
    };
    let size = (
        PANEL_W * cols as u32,
        TITLE_H + PANEL_H * rows as u32 + note_h,
    );
    svg_document(size, title, |root| {
        let (head, rest) = root.split_vertically(TITLE_H);
        head.draw(&Text::new(
            title.to_string(),
            (12, TITLE_H as i32 / 2),
            text(15.0, TEXT_COLOR).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        let (grid, foot) = rest.split_vertically(PANEL_H * rows as u32);
        if drawn.is_empty() {
            panel(&grid, "all metrics", &[])?;
            return Ok(Vec::new());
        }
        let cells = grid.split_evenly((rows, COLS));
        for ((name, pts), cell) in drawn.iter().copied().zip(&cells) {
            panel(cell, name, pts)?;
        }
        if !empty.is_empty() {
            foot.draw(&Text::new(
                format!("No data for: {}", empty.join(", ")),
                (12, note_h as i32 / 2),
                text(12.0, MUTED_COLOR).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        Ok(Vec::new())
    })
}

/// One panel: `name` as its caption, the curve through `pts` (finite) against steps, and
/// the last value in the top-right corner.
fn panel(area: &Root, name: &str, pts: &[(f64, f64)]) -> DrawResult {
    let xs = finite_range(pts.iter().map(|p| p.0));
    let ys = finite_range(pts.iter().map(|p| p.1));
    let (x_scale, y_scale) = match (xs, ys) {
        (Some((x0, x1)), Some((y0, y1))) => {
            let (x0, x1) = padded(x0, x1, 1.0);
            let (y0, y1) = padded(y0, y1, 1.0);
            (
                Scale::nice(x0, x1, 4, 0.0, false).tight(x0, x1),
                Scale::nice(y0, y1, 4, 0.0, false),
            )
        }
        _ => (Scale::empty(), Scale::empty()),
    };
    // Header: the metric's name on the left, its last value on the right.
    let (head, body) = area.split_vertically(26);
    let (w, _) = head.dim_in_pixel();
    head.draw(&Text::new(
        name.to_string(),
        (10, 15),
        text(13.0, TEXT_COLOR).pos(Pos::new(HPos::Left, VPos::Center)),
    ))?;
    if let Some(&(_, last)) = pts.last() {
        head.draw(&Text::new(
            format!("last {}", short_number(last)),
            (w as i32 - 16, 15),
            text(11.0, MUTED_COLOR).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    let mut chart = ChartBuilder::on(&body)
        .margin_top(8)
        .margin_right(16)
        .margin_left(6)
        .margin_bottom(4)
        .x_label_area_size(22)
        .y_label_area_size(y_scale.label_width(11.0) + 10)
        .build_cartesian_2d(x_scale, y_scale)?;
    chart
        .configure_mesh()
        .bold_line_style(GRID_COLOR)
        .axis_style(AXIS_COLOR)
        .label_style(text(11.0, TEXT_COLOR))
        .set_all_tick_mark_size(3)
        .draw()?;
    let plot = chart.plotting_area();
    match pts {
        [] => no_data(plot),
        [p] => {
            plot.draw(&Circle::new(*p, 2, Class::Series.color(color(0)).filled()))?;
            Ok(())
        }
        _ => {
            plot.draw(&PathElement::new(
                pts.to_vec(),
                Class::Series.color(color(0)).stroke_width(2),
            ))?;
            Ok(())
        }
    }
}

/// A value with 4 significant digits, in scientific notation when very large or small.
fn short_number(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        format!("{v:.3e}")
    } else {
        let decimals = (3.0 - a.max(1e-3).log10().floor()).clamp(0.0, 6.0) as usize;
        fixed(v, decimals)
    }
}

// ---------------------------------------------------------------------------
// Shared chart plumbing (also used by `walkforward::charts`).

/// Series colors; index 0 is meant for the agent. Cycles for more series.
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
];
pub(crate) const AXIS_COLOR: RGBColor = RGBColor(0x55, 0x55, 0x55);
pub(crate) const GRID_COLOR: RGBColor = RGBColor(0xe4, 0xe4, 0xe4);
pub(crate) const TEXT_COLOR: RGBColor = RGBColor(0x22, 0x22, 0x22);
pub(crate) const MUTED_COLOR: RGBColor = RGBColor(0x66, 0x66, 0x66);

/// Palette color `i`, cycling.
pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Text of `px` pixels (the SVG `font-size`) in the generic sans-serif family.
/// plotters writes `font-size` as its own size divided by 1.24.
pub(crate) fn text(px: f64, c: RGBColor) -> TextStyle<'static> {
    ("sans-serif", px * 1.24).into_font().color(&c)
}

/// Estimated width in pixels of `s` in `px` sans-serif text (a little wider than
/// plotters' own estimate, to leave room in browsers with wide fonts).
pub(crate) fn text_width(s: &str, px: f64) -> u32 {
    (s.chars().count() as f64 * px * 0.6).ceil() as u32
}

/// The root drawing area of a chart.
pub(crate) type Root<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// Result of drawing: plotters' errors, boxed.
pub(crate) type DrawResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Kinds of data elements, written as their `class` attribute.
///
/// plotters writes no classes, so elements of a class are drawn with a marker opacity
/// (slightly below the real one, and used by nothing else) that [`svg_document`] then
/// replaces with the class and the real opacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// An equity or training curve (one element per unbroken run of points).
    Series,
    /// A drawdown line.
    Drawdown,
    /// The filled drawdown area of the first series.
    DrawdownArea,
    /// A histogram or grouped bar; gets the next tooltip of [`svg_document`]'s list.
    Bar,
    /// A solid zero line.
    Zero,
    /// A dashed zero marker.
    ZeroDashed,
    /// A mean marker.
    Mean,
}

impl Class {
    const ALL: [Class; 7] = [
        Class::Series,
        Class::Drawdown,
        Class::DrawdownArea,
        Class::Bar,
        Class::Zero,
        Class::ZeroDashed,
        Class::Mean,
    ];

    fn name(self) -> &'static str {
        match self {
            Class::Series => "series",
            Class::Drawdown => "drawdown",
            Class::DrawdownArea => "drawdown-area",
            Class::Bar => "bar",
            Class::Zero | Class::ZeroDashed => "zero",
            Class::Mean => "mean",
        }
    }

    fn opacity(self) -> f64 {
        match self {
            Class::DrawdownArea => 0.25,
            _ => 1.0,
        }
    }

    fn marker(self) -> f64 {
        self.opacity() - 1e-6 * (self as u8 as f64 + 1.0)
    }

    /// Attributes added to elements of the class.
    fn extra(self) -> &'static str {
        match self {
            Class::Series | Class::Drawdown | Class::Mean => {
                " stroke-linejoin=\"round\" stroke-linecap=\"round\""
            }
            Class::ZeroDashed => " stroke-dasharray=\"4 3\"",
            _ => "",
        }
    }

    /// `c` with this class's marker opacity.
    pub(crate) fn color(self, c: RGBColor) -> RGBAColor {
        RGBAColor(c.0, c.1, c.2, self.marker())
    }
}

/// Draws a `size` chart with `draw` on a white background and returns the complete SVG
/// document, with a `<title>` of `title`, classes on data elements ([`Class`]) and the
/// tooltips `draw` returns on the [`Class::Bar`] elements, in drawing order. When drawing
/// fails, the document shows the error instead.
pub(crate) fn svg_document(
    size: (u32, u32),
    title: &str,
    draw: impl FnOnce(&Root) -> DrawResult<Vec<String>>,
) -> String {
    let mut raw = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut raw, size).into_drawing_area();
        match root.fill(&WHITE) {
            Ok(()) => draw(&root).and_then(|tips| {
                root.present()?;
                Ok(tips)
            }),
            Err(e) => Err(e.into()),
        }
    };
    match drawn {
        Ok(tips) => finish(&raw, title, &tips),
        Err(e) => error_document(size, title, &e.to_string()),
    }
}

/// Adds the title, classes and tooltips to plotters' output (one element per line).
fn finish(raw: &str, title: &str, tips: &[String]) -> String {
    let markers: Vec<(String, Class)> = Class::ALL
        .iter()
        .map(|&c| (format!(" opacity=\"{}\"", c.marker()), c))
        .collect();
    let mut tips = tips.iter();
    let mut out = String::with_capacity(raw.len() + raw.len() / 8);
    for (k, line) in raw.lines().enumerate() {
        match markers.iter().find(|(m, _)| line.contains(m.as_str())) {
            Some((m, class)) => {
                let attrs = format!(
                    " class=\"{}\" opacity=\"{}\"{}",
                    class.name(),
                    class.opacity(),
                    class.extra()
                );
                let line = line.replacen(m.as_str(), &attrs, 1);
                let tip = if *class == Class::Bar {
                    tips.next()
                } else {
                    None
                };
                match (tip, line.strip_suffix("/>")) {
                    (Some(tip), Some(open)) => {
                        out.push_str(open);
                        out.push_str("><title>");
                        out.push_str(&escape(tip));
                        out.push_str("</title></rect>");
                    }
                    _ => out.push_str(&line),
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
        if k == 0 {
            out.push_str("<title>");
            out.push_str(&escape(title));
            out.push_str("</title>\n");
        }
    }
    out
}

/// A document with just `title` and an error note, for a chart that could not be drawn.
fn error_document((w, h): (u32, u32), title: &str, error: &str) -> String {
    format!(
        "<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <title>{t}</title>\n\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#FFFFFF\"/>\n\
         <text x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"14\" \
         fill=\"#666666\">chart could not be drawn: {e}</text>\n</svg>\n",
        t = escape(title),
        x = w / 2,
        y = h / 2,
        e = escape(error)
    )
}

/// "no data" in the middle of a plot area.
pub(crate) fn no_data<C>(plot: &DrawingArea<SVGBackend, C>) -> DrawResult
where
    C: plotters::coord::CoordTranslate,
{
    let (w, h) = plot.dim_in_pixel();
    plot.strip_coord_spec().draw(&Text::new(
        "no data",
        (w as i32 / 2, h as i32 / 2),
        text(14.0, MUTED_COLOR).pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

/// Minimum and maximum of the finite values, or `None` when there are none.
pub(crate) fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Widens a degenerate range `lo == hi` symmetrically (by 10% of the value, or by
/// `zero_pad` around 0) so that it can be mapped to pixels.
pub(crate) fn padded(lo: f64, hi: f64, zero_pad: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        let pad = if lo == 0.0 { zero_pad } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    }
}

/// Fixed-precision number without a negative zero ("-0.00" becomes "0.00").
pub(crate) fn fixed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// Decimals needed to tell values `step` apart (0 to 6).
fn decimals_for(step: f64) -> usize {
    if step.is_finite() && step > 0.0 {
        (-step.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        2
    }
}

/// Rounds `raw` up to 1, 2 or 5 × 10^k; NaN when `raw` is not positive and finite.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return f64::NAN;
    }
    let base = 10_f64.powf(raw.log10().floor());
    let f = raw / base;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * base
}

/// A linear plotters coordinate over `[lo, hi]` with its own ticks and tick labels.
/// Values outside the range are clamped to it (NaN to `lo`).
#[derive(Clone, Debug)]
pub(crate) struct Scale {
    lo: f64,
    hi: f64,
    ticks: Vec<(f64, String)>,
}

impl Scale {
    /// A scale over `[lo, hi]` (requires `lo < hi` for a useful mapping) with the given
    /// ticks and labels.
    pub(crate) fn with_ticks(lo: f64, hi: f64, ticks: Vec<(f64, String)>) -> Scale {
        Scale { lo, hi, ticks }
    }

    /// `[0, 1]` without ticks, for charts without data.
    pub(crate) fn empty() -> Scale {
        Scale::with_ticks(0.0, 1.0, Vec::new())
    }

    /// A value scale covering `[lo, hi]` (`lo < hi`), widened to multiples of a "nice"
    /// step (1, 2 or 5 × 10^k, at least `min_step`) giving about `target` intervals, with
    /// a tick at each multiple. Labels are in percent (of `v * 100`) when `percent`.
    pub(crate) fn nice(lo: f64, hi: f64, target: usize, min_step: f64, percent: bool) -> Scale {
        let step = nice_step((hi - lo) / target.max(1) as f64).max(min_step);
        let (nlo, nhi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
        if step.is_finite() && step > 0.0 && nlo.is_finite() && nhi.is_finite() && nhi > nlo {
            Scale::labelled(nlo, nhi, step, percent)
        } else {
            Scale::labelled(lo, hi, f64::NAN, percent)
        }
    }

    /// The same ticks over the (narrower) range `[lo, hi]`; ticks outside are dropped.
    pub(crate) fn tight(mut self, lo: f64, hi: f64) -> Scale {
        if lo < hi {
            self.ticks.retain(|(v, _)| (lo..=hi).contains(v));
            self.lo = lo;
            self.hi = hi;
        }
        self
    }

    fn labelled(lo: f64, hi: f64, step: f64, percent: bool) -> Scale {
        let values = tick_values(lo, hi, step);
        let step = if step.is_finite() { step } else { hi - lo };
        // Large numbers get a unit suffix, the same for all ticks.
        let top = lo.abs().max(hi.abs());
        let large = step >= 1000.0;
        let unit = if percent || !large {
            (1.0, "")
        } else if top >= 1e9 {
            (1e9, "G")
        } else if top >= 1e6 {
            (1e6, "M")
        } else {
            (1e3, "k")
        };
        let ticks = values
            .into_iter()
            .map(|v| (v, tick_label(v, step, unit, percent)))
            .collect();
        Scale { lo, hi, ticks }
    }

    /// Position of `v` as a fraction of the scale, clamped to `[0, 1]` (NaN gives 0).
    /// Halves are used so that extreme ranges do not overflow.
    pub(crate) fn unit(&self, v: f64) -> f64 {
        let t = (v * 0.5 - self.lo * 0.5) / (self.hi * 0.5 - self.lo * 0.5);
        if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) }
    }

    /// Width in pixels of the widest tick label in `px` text.
    pub(crate) fn label_width(&self, px: f64) -> u32 {
        self.ticks
            .iter()
            .map(|(_, l)| text_width(l, px))
            .max()
            .unwrap_or(0)
    }
}

/// Used by the walk-forward charts only, which are built with the `torch` feature.
#[cfg_attr(not(feature = "torch"), allow(dead_code))]
impl Scale {
    /// A value scale exactly `[lo, hi]` with ticks at the multiples of a nice step inside.
    pub(crate) fn exact(lo: f64, hi: f64, target: usize, percent: bool) -> Scale {
        Scale::labelled(lo, hi, nice_step((hi - lo) / target.max(1) as f64), percent)
    }

    pub(crate) fn lo(&self) -> f64 {
        self.lo
    }

    pub(crate) fn hi(&self) -> f64 {
        self.hi
    }

    /// The ticks and their labels.
    pub(crate) fn ticks(&self) -> &[(f64, String)] {
        &self.ticks
    }
}

impl Ranged for Scale {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = f64::from(limit.1) - f64::from(limit.0);
        limit.0 + (self.unit(*v) * span).round() as i32
    }

    /// The ticks, for the mesh's (bold) grid lines and labels; no light lines.
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.iter().map(|(v, _)| *v).collect()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Scale {
    fn format_ext(&self, value: &f64) -> String {
        self.ticks
            .iter()
            .find(|(v, _)| v.to_bits() == value.to_bits())
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
    }
}

/// Multiples of `step` within `[lo, hi]`; just the ends when no usable step exists.
fn tick_values(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    if step.is_finite() && step > 0.0 {
        let k0 = (lo / step - 1e-9).ceil();
        let k1 = (hi / step + 1e-9).floor();
        if k0.is_finite() && k1.is_finite() && k1 >= k0 && k1 - k0 <= 50.0 {
            return (0..=(k1 - k0) as usize)
                .map(|i| (k0 + i as f64) * step)
                .collect();
        }
    }
    if lo < hi { vec![lo, hi] } else { vec![lo] }
}

/// Tick label of `v` with enough decimals for `step`, divided by `unit.0` and suffixed
/// with `unit.1`, or in percent. Very large or small values use scientific notation.
fn tick_label(v: f64, step: f64, unit: (f64, &str), percent: bool) -> String {
    let (v, step, suffix) = if percent {
        (v * 100.0, step * 100.0, "%")
    } else {
        (v / unit.0, step / unit.0, unit.1)
    };
    if v != 0.0 && (v.abs() >= 1e15 || step.abs() < 1e-5) {
        format!("{v:.2e}{suffix}")
    } else {
        format!("{}{suffix}", fixed(v, decimals_for(step)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use roxmltree::{Document, Node};

    /// Points of a polyline or polygon (`points`), or the center of a circle (shared with
    /// the walk-forward charts' tests).
    pub(crate) fn points(n: &Node) -> Vec<(f64, f64)> {
        if n.has_tag_name("circle") {
            return vec![(attr(n, "cx"), attr(n, "cy"))];
        }
        n.attribute("points")
            .expect("points")
            .split_whitespace()
            .map(|p| {
                let (x, y) = p.split_once(',').expect("x,y");
                (x.parse().expect("x"), y.parse().expect("y"))
            })
            .collect()
    }

    fn texts<'a>(doc: &'a Document) -> Vec<(Node<'a, 'a>, String)> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| (n, n.text().unwrap_or("").trim().to_string()))
            .collect()
    }

    /// A numeric attribute of `n`.
    pub(crate) fn attr(n: &Node, name: &str) -> f64 {
        n.attribute(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("numeric {name}"))
    }

    fn curve(name: &str, pts: &[(f64, f64)]) -> Curve {
        (name.to_string(), pts.to_vec())
    }

    /// Well-formed, no NaN or infinity anywhere, a title element.
    fn check(svg: &str) -> Document<'_> {
        let doc = Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed: {e}\n{svg}"));
        for n in doc.descendants().filter(|n| n.is_element()) {
            for a in n.attributes() {
                assert!(
                    !a.value().contains("NaN") && !a.value().contains("inf"),
                    "{}={}",
                    a.name(),
                    a.value()
                );
            }
        }
        assert!(
            doc.root_element()
                .children()
                .any(|n| n.has_tag_name("title"))
        );
        doc
    }

    #[test]
    fn one_line_per_curve_on_its_axes() {
        // Steps 0..=1000 and values 0..=2: ticks at 0, 250?, ... The first and last point
        // must sit on the y grid lines labelled "0.0" and "2.0", and x must grow with
        // steps, evenly.
        let curves = vec![
            curve("a/one", &[(0.0, 0.0), (500.0, 1.0), (1000.0, 2.0)]),
            curve("b/two", &[(0.0, 5.0), (1000.0, f64::NAN), (2000.0, 7.0)]),
            curve("c/none", &[]),
        ];
        let svg = render(&curves, "run <1>");
        let doc = check(&svg);
        let lines: Vec<Node> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("series"))
            .collect();
        assert_eq!(lines.len(), 2, "{svg}");
        let pts = points(&lines[0]);
        assert_eq!(pts.len(), 3);
        assert!((pts[1].0 - pts[0].0 - (pts[2].0 - pts[1].0)).abs() <= 1.0);
        assert!(pts[0].1 > pts[1].1 && pts[1].1 > pts[2].1);
        // The y tick labels of the first panel are those left of its line.
        let label_y = |label: &str| {
            texts(&doc)
                .into_iter()
                .find(|(n, t)| t == label && attr(n, "x") < pts[0].0)
                .map(|(n, _)| attr(&n, "y"))
                .unwrap_or_else(|| panic!("no tick label {label}: {svg}"))
        };
        assert_eq!(pts[0].1, label_y("0.0"));
        assert_eq!(pts[2].1, label_y("2.0"));
        assert!((pts[1].1 - label_y("1.0")).abs() <= 1.0);
        // The NaN point is skipped.
        assert_eq!(points(&lines[1]).len(), 2);
        let t: Vec<String> = texts(&doc).into_iter().map(|(_, t)| t).collect();
        assert!(t.contains(&"a/one".to_string()) && t.contains(&"b/two".to_string()));
        assert!(t.contains(&"run <1>".to_string()));
        assert!(t.contains(&"No data for: c/none".to_string()), "{t:?}");
        assert!(t.contains(&"last 7.000".to_string()), "{t:?}");
    }

    #[test]
    fn large_step_counts_get_a_unit() {
        let svg = render(&[curve("x", &[(0.0, 1.0), (2_000_000.0, 3.0)])], "t");
        let doc = check(&svg);
        let t: Vec<String> = texts(&doc).into_iter().map(|(_, t)| t).collect();
        assert!(t.contains(&"2.0M".to_string()), "{t:?}");
        assert!(t.contains(&"1.0M".to_string()), "{t:?}");
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let nan = f64::NAN;
        for curves in [
            vec![],
            vec![curve("e", &[])],
            vec![curve("e", &[(nan, 1.0), (1.0, f64::INFINITY)])],
            vec![curve("one", &[(5.0, 1.0)])],
            vec![curve("flat", &[(0.0, 0.0), (1.0, 0.0)])],
            vec![curve("huge", &[(0.0, -f64::MAX), (1.0, f64::MAX)])],
            vec![curve("tiny", &[(0.0, 1e-300), (1.0, 2e-300)])],
        ] {
            let svg = render(&curves, "t");
            check(&svg);
        }
        assert!(render(&[], "t").contains("no data"));
        let one = render(&[curve("one", &[(5.0, 1.0)])], "t");
        let doc = check(&one);
        assert_eq!(
            doc.descendants()
                .filter(|n| n.has_tag_name("circle") && n.attribute("class") == Some("series"))
                .count(),
            1
        );
    }

    #[test]
    fn output_is_deterministic() {
        let make = || {
            render(
                &[
                    curve("a", &[(0.0, 0.1), (10.0, 0.3), (20.0, -0.2)]),
                    curve("b", &[(0.0, 3.0)]),
                ],
                "t",
            )
        };
        assert_eq!(make(), make());
    }

    #[test]
    fn read_curves_reads_metrics_and_refuses_empty_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lines = [
            r#"{"update":1,"global_step":128,"charts/episode_return":0.5,"charts/sps":1000.0}"#,
            r#"{"update":2,"global_step":256,"charts/episode_return":null,"charts/sps":1100.0}"#,
        ];
        std::fs::write(dir.path().join("metrics.jsonl"), lines.join("\n")).expect("write");
        let curves = read_curves(dir.path()).expect("curves");
        assert_eq!(curves.len(), PANELS.len());
        assert_eq!(curves[0].1, vec![(128.0, 0.5)]);
        let sps = curves.iter().find(|(k, _)| k == "charts/sps").expect("sps");
        assert_eq!(sps.1, vec![(128.0, 1000.0), (256.0, 1100.0)]);
        let out = dir.path().join("plots");
        let files = plot_run(dir.path(), &out).expect("plot");
        let svg = std::fs::read_to_string(&files[0]).expect("svg");
        check(&svg);
        assert!(svg.starts_with("<svg") && svg.contains("charts/episode_return"));

        std::fs::write(dir.path().join("metrics.jsonl"), "{\"global_step\":1}\n").expect("write");
        assert!(read_curves(dir.path()).is_err());
    }

    #[test]
    fn classes_tooltips_and_title_are_added() {
        let svg = svg_document((100, 50), "a <b>", |root| {
            root.draw(&Rectangle::new(
                [(1, 1), (10, 10)],
                Class::Bar.color(color(0)).filled(),
            ))?;
            root.draw(&Rectangle::new([(20, 1), (30, 10)], color(0).filled()))?;
            root.draw(&PathElement::new(
                vec![(0, 20), (50, 20)],
                Class::ZeroDashed.color(AXIS_COLOR),
            ))?;
            Ok(vec!["x & y".to_string()])
        });
        let doc = check(&svg);
        let bar = doc
            .descendants()
            .find(|n| n.attribute("class") == Some("bar"))
            .expect("bar");
        assert_eq!(bar.attribute("opacity"), Some("1"));
        assert_eq!(
            bar.children()
                .find(|n| n.has_tag_name("title"))
                .and_then(|n| n.text()),
            Some("x & y")
        );
        let zero = doc
            .descendants()
            .find(|n| n.attribute("class") == Some("zero"))
            .expect("zero");
        assert_eq!(zero.attribute("stroke-dasharray"), Some("4 3"));
        assert_eq!(
            doc.descendants()
                .filter(|n| n.attribute("class").is_some())
                .count(),
            2
        );
        let title = doc.root_element().first_element_child().expect("title");
        assert_eq!(
            (title.tag_name().name(), title.text()),
            ("title", Some("a <b>"))
        );
    }

    #[test]
    fn drawing_errors_give_a_document_with_a_note() {
        let svg = svg_document((100, 50), "t", |_| Err("broken".into()));
        let doc = check(&svg);
        assert!(svg.contains("chart could not be drawn: broken"), "{svg}");
        assert_eq!(doc.root_element().attribute("width"), Some("100"));
    }

    #[test]
    fn scales_pick_nice_ticks_and_labels() {
        let s = Scale::nice(0.93, 1.27, 5, 0.0, false);
        assert!(s.lo() <= 0.93 && s.hi() >= 1.27);
        let labels: Vec<&str> = s.ticks().iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["0.9", "1.0", "1.1", "1.2", "1.3"]);
        let p = Scale::nice(-0.123, 0.0, 4, 0.0, true);
        assert!(p.ticks().iter().any(|(_, l)| l == "-5%"), "{p:?}");
        let e = Scale::exact(-0.013, 0.021, 6, true);
        assert_eq!((e.lo(), e.hi()), (-0.013, 0.021));
        assert!(e.ticks().iter().all(|(v, _)| (-0.013..=0.021).contains(v)));
        assert_eq!(Scale::nice(0.0, 3.0, 5, 1.0, false).ticks().len(), 4);
        assert_eq!(Scale::nice(0.0, 1.0e6, 4, 0.0, false).ticks()[1].1, "0.5M");
        assert_eq!(Scale::nice(0.0, 1.0e6, 5, 0.0, false).ticks()[1].1, "0.2M");
        // Mapping clamps and halves: no overflow at the extremes.
        let huge = Scale::nice(-f64::MAX, f64::MAX, 5, 0.0, false);
        assert_eq!(huge.unit(0.0), 0.5);
        assert_eq!(huge.map(&f64::MAX, (10, 110)), 110);
        assert_eq!(s.map(&f64::NAN, (10, 110)), 10);
        assert_eq!(s.map(&100.0, (110, 10)), 10);
    }
}
