//! Hand-drawn SVG charts for the walk-forward evaluation report.
//!
//! Every function returns a complete, standalone SVG document (no fonts or
//! other resources referenced; text uses the generic `sans-serif` family):
//!
//! * [`equity_drawdown`] — equity curves (e.g. a wealth index starting at 1.0)
//!   of the agent and its baselines over time in a top panel, and the
//!   drawdown of each curve from its running maximum, in percent, in a bottom
//!   panel (filled area for the first series, lines for the others).
//! * [`histogram`] — distribution of a sample (e.g. daily returns) in
//!   equal-width bins between its minimum and maximum, with a marker at zero
//!   and the sample size, mean and standard deviation printed in a corner.
//! * [`grouped_bars`] — one group of bars per category with one bar per
//!   series, e.g. a metric per walk-forward fold for agent and baselines.
//!
//! Conventions shared by all charts:
//!
//! * Non-finite values (NaN, ±inf) are skipped. When nothing finite is left,
//!   the chart frame is drawn with a "no data" note.
//! * All drawn coordinates are clamped to the viewBox.
//! * Numbers are written with fixed precision, so the same input always
//!   produces the same bytes.
//! * Series take colors from a fixed palette of 8 colors (the first one is
//!   meant for the agent), cycling when there are more series.
//! * Data elements carry a `class` attribute: `series` (equity paths),
//!   `drawdown` (drawdown area / lines), `bar` (histogram and grouped bars)
//!   and `zero` (zero reference lines).

use std::fmt::{self, Write};

use super::html::escape;
use chrono::NaiveDate;

/// One named series of a chart.
pub struct Series {
    pub label: String,
    pub values: Vec<f64>,
}

/// Series colors; index 0 is used for the agent. Cycles for more series.
const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];
const AXIS_COLOR: &str = "#333333";
const GRID_COLOR: &str = "#e6e6e6";
const TEXT_COLOR: &str = "#222222";
const MUTED_COLOR: &str = "#666666";

/// Longest legend label (in characters) before it is truncated with "…".
const LEGEND_LABEL_MAX: usize = 40;
/// Longest category label (in characters) before it is truncated with "…".
const CATEGORY_LABEL_MAX: usize = 24;
/// Upper bound on histogram bins, to keep documents reasonably small.
const MAX_BINS: usize = 1000;
/// Rough width of one character of 12px sans-serif text, for layout.
const CHAR_W: f64 = 7.0;
/// Height of one legend row.
const LEGEND_ROW_H: f64 = 18.0;

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Equity curves with a drawdown panel.
///
/// The top panel draws every series against `dates` (value `i` of a series
/// belongs to `dates[i]`; missing or non-finite values leave gaps). The
/// bottom panel draws the drawdown `value / running max − 1` of each series
/// in percent: a filled area for the first series and lines for the others.
/// Drawdowns are only defined while the running maximum is positive.
pub fn equity_drawdown(title: &str, dates: &[NaiveDate], series: &[Series]) -> String {
    const WIDTH: f64 = 960.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 24.0;
    const TOP_H: f64 = 300.0;
    const GAP: f64 = 36.0;
    const DD_H: f64 = 150.0;
    const BOTTOM: f64 = 40.0;
    const LEGEND_Y: f64 = 44.0;

    let labels: Vec<String> = series
        .iter()
        .map(|s| truncate(&s.label, LEGEND_LABEL_MAX))
        .collect();
    let legend = legend_layout(&labels, LEFT, WIDTH - RIGHT);
    let top_y = LEGEND_Y + legend.rows as f64 * LEGEND_ROW_H + 6.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let top = Frame {
        x: LEFT,
        y: top_y,
        w: plot_w,
        h: TOP_H,
    };
    let dd = Frame {
        x: LEFT,
        y: top.bottom() + GAP,
        w: plot_w,
        h: DD_H,
    };
    let height = dd.bottom() + BOTTOM;

    let mut svg = Svg::new(WIDTH, height, title);
    draw_legend(&mut svg, &labels, &legend, LEGEND_Y);

    let n = dates.len();
    let wealth: Vec<Vec<Option<f64>>> = series
        .iter()
        .map(|s| {
            (0..n)
                .map(|i| s.values.get(i).copied().filter(|v| v.is_finite()))
                .collect()
        })
        .collect();
    let Some((lo, hi)) = finite_range(wealth.iter().flatten().flatten().copied()) else {
        svg.frame(top);
        svg.frame(dd);
        svg.no_data(top);
        return svg.finish();
    };
    // From here on there is at least one finite value, hence `n >= 1`.
    let drawdowns: Vec<Vec<Option<f64>>> = wealth.iter().map(|w| drawdown(w)).collect();

    let x_at = |i: usize| {
        if n <= 1 {
            top.at_x(0.5)
        } else {
            top.at_x(i as f64 / (n - 1) as f64)
        }
    };

    // Top panel: wealth.
    let (lo, hi) = padded(lo, hi, 1.0);
    let axis = Axis::nice(lo, hi, 5, 0.0);
    svg.y_axis(top, &axis, false);
    for (k, w) in wealth.iter().enumerate().rev() {
        let points = w
            .iter()
            .enumerate()
            .map(|(i, v)| v.map(|v| (x_at(i), top.at_y(axis.unit(v)))));
        if let Some(d) = polyline(&svg, points) {
            svg.put(format_args!(
                "<path class=\"series\" d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" \
                 stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n",
                color(k)
            ));
        }
    }
    svg.frame(top);

    // Bottom panel: drawdown in percent.
    let min_dd = drawdowns
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0_f64, f64::min);
    let dd_axis = Axis::nice(if min_dd < 0.0 { min_dd } else { -0.01 }, 0.0, 4, 0.0);
    svg.y_axis(dd, &dd_axis, true);
    for (k, d) in drawdowns.iter().enumerate().rev() {
        let points = d
            .iter()
            .enumerate()
            .map(|(i, v)| v.map(|v| (x_at(i), dd.at_y(dd_axis.unit(v)))));
        if k == 0 {
            let zero_y = dd.at_y(dd_axis.unit(0.0));
            if let Some(path) = area(&svg, points, zero_y) {
                svg.put(format_args!(
                    "<path class=\"drawdown\" d=\"{path}\" fill=\"{c}\" fill-opacity=\"0.25\" \
                     stroke=\"{c}\" stroke-width=\"1\"/>\n",
                    c = color(0)
                ));
            }
        } else if let Some(path) = polyline(&svg, points) {
            svg.put(format_args!(
                "<path class=\"drawdown\" d=\"{path}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.2\" \
                 stroke-linejoin=\"round\"/>\n",
                color(k)
            ));
        }
    }
    svg.frame(dd);
    svg.text(
        dd.x,
        dd.y - 7.0,
        "start",
        11.0,
        MUTED_COLOR,
        "Drawdown",
        None,
    );

    // Shared x axis: first, middle and last date.
    let mut idx = vec![0, (n - 1) / 2, n - 1];
    idx.dedup();
    for (pos, &i) in idx.iter().enumerate() {
        let x = x_at(i);
        let anchor = match (idx.len(), pos) {
            (1, _) => "middle",
            (_, 0) => "start",
            (len, p) if p + 1 == len => "end",
            _ => "middle",
        };
        for panel in [top, dd] {
            svg.line(x, panel.y, x, panel.bottom(), GRID_COLOR, 1.0, None);
        }
        svg.line(x, dd.bottom(), x, dd.bottom() + 4.0, AXIS_COLOR, 1.0, None);
        let label = dates[i].format("%Y-%m-%d").to_string();
        svg.text(
            x,
            dd.bottom() + 18.0,
            anchor,
            12.0,
            TEXT_COLOR,
            &label,
            None,
        );
    }
    svg.finish()
}

/// Histogram of `values` in `bins` equal-width bins between their minimum
/// and maximum (at least 1 and at most 1000 bins).
///
/// Bars are drawn for non-empty bins only; a dashed vertical line marks 0
/// when it lies within the range. The x axis is formatted in percent when
/// `percent` is true, the y axis shows counts. The sample size, mean and
/// (sample) standard deviation of the finite values are printed in the
/// top-right corner. When all values are equal, the range is widened
/// symmetrically around them.
pub fn histogram(title: &str, values: &[f64], bins: usize, percent: bool) -> String {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 420.0;
    let plot = Frame {
        x: 64.0,
        y: 44.0,
        w: WIDTH - 64.0 - 24.0,
        h: HEIGHT - 44.0 - 48.0,
    };
    let mut svg = Svg::new(WIDTH, HEIGHT, title);

    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let Some((lo, hi)) = finite_range(finite.iter().copied()) else {
        svg.frame(plot);
        svg.no_data(plot);
        return svg.finish();
    };
    let (lo, hi) = padded(lo, hi, if percent { 0.01 } else { 1.0 });
    let x_axis = Axis::exact(lo, hi, 6);

    let bins = bins.clamp(1, MAX_BINS);
    let mut counts = vec![0_usize; bins];
    for &v in &finite {
        // `unit` is within [0, 1]; the maximum falls into the last bin.
        let i = (x_axis.unit(v) * bins as f64).floor() as usize;
        counts[i.min(bins - 1)] += 1;
    }
    let max_count = counts.iter().copied().max().unwrap_or(0);
    let y_axis = Axis::nice(0.0, max_count.max(1) as f64, 5, 1.0);

    svg.y_axis(plot, &y_axis, false);
    let bin_w = plot.w / bins as f64;
    let gap = if bin_w > 3.0 { 1.0 } else { 0.0 };
    for (i, &count) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let top = plot.at_y(y_axis.unit(count as f64));
        let x = plot.x + i as f64 * bin_w;
        let from = lo + (hi - lo) * i as f64 / bins as f64;
        let to = lo + (hi - lo) * (i + 1) as f64 / bins as f64;
        let tip = format!(
            "[{}, {}): {count}",
            fmt_value(from, percent, 4),
            fmt_value(to, percent, 4)
        );
        svg.rect(
            x + gap / 2.0,
            top,
            bin_w - gap,
            plot.bottom() - top,
            color(0),
            "bar",
            Some(&tip),
        );
    }
    if lo <= 0.0 && 0.0 <= hi {
        let x = plot.at_x(x_axis.unit(0.0));
        svg.put(format_args!(
            "<line class=\"zero\" x1=\"{x}\" y1=\"{y1}\" x2=\"{x}\" y2=\"{y2}\" stroke=\"{AXIS_COLOR}\" \
             stroke-width=\"1\" stroke-dasharray=\"4 3\"/>\n",
            x = svg.fx(x),
            y1 = svg.fy(plot.y),
            y2 = svg.fy(plot.bottom())
        ));
    }
    svg.x_axis(plot, &x_axis, percent);
    svg.frame(plot);

    // Summary statistics in the top-right corner.
    let n = finite.len();
    let mean = finite.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    let digits = if percent { 3 } else { 4 };
    let lines = [
        format!("n = {n}"),
        format!("mean = {}", fmt_value(mean, percent, digits)),
        format!("std = {}", fmt_value(var.sqrt(), percent, digits)),
    ];
    let box_w = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * CHAR_W + 12.0;
    let box_x = (plot.right() - 6.0 - box_w).max(plot.x);
    svg.put(format_args!(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#ffffff\" fill-opacity=\"0.85\"/>\n",
        svg.fx(box_x),
        svg.fy(plot.y + 6.0),
        num(box_w.min(plot.w)),
        num(lines.len() as f64 * 16.0 + 6.0)
    ));
    for (k, line) in lines.iter().enumerate() {
        svg.text(
            plot.right() - 12.0,
            plot.y + 22.0 + 16.0 * k as f64,
            "end",
            12.0,
            TEXT_COLOR,
            line,
            None,
        );
    }
    svg.finish()
}

/// Grouped bar chart: one group per category, one bar per series within a
/// group (`series[i].values[j]` is the value of series `i` in category `j`).
///
/// Missing or non-finite values are skipped (no bar). Bars grow from a zero
/// line; the value axis always includes 0 and is formatted in percent when
/// `percent` is true. Category labels are rotated by −45° when there are more
/// than 8 categories. The chart gets wider with more bars (720 to 1800 units).
pub fn grouped_bars(
    title: &str,
    categories: &[String],
    series: &[Series],
    percent: bool,
) -> String {
    const LEFT: f64 = 72.0;
    const RIGHT: f64 = 24.0;
    const LEGEND_Y: f64 = 44.0;
    const PLOT_H: f64 = 300.0;

    let m = categories.len();
    let per_group = series.len().max(1) as f64;
    let width = (LEFT + RIGHT + m as f64 * (per_group * 12.0 + 16.0)).clamp(720.0, 1800.0);
    let labels: Vec<String> = series
        .iter()
        .map(|s| truncate(&s.label, LEGEND_LABEL_MAX))
        .collect();
    let legend = legend_layout(&labels, LEFT, width - RIGHT);
    let cat_labels: Vec<String> = categories
        .iter()
        .map(|c| truncate(c, CATEGORY_LABEL_MAX))
        .collect();
    let rotate = m > 8;
    let bottom = if rotate {
        let longest = cat_labels
            .iter()
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0) as f64;
        28.0 + longest * CHAR_W * 0.72
    } else {
        36.0
    };
    let top_y = LEGEND_Y + legend.rows as f64 * LEGEND_ROW_H + 6.0;
    let plot = Frame {
        x: LEFT,
        y: top_y,
        w: width - LEFT - RIGHT,
        h: PLOT_H,
    };
    let height = plot.bottom() + bottom;

    let mut svg = Svg::new(width, height, title);
    draw_legend(&mut svg, &labels, &legend, LEGEND_Y);

    let value = |i: usize, j: usize| series[i].values.get(j).copied().filter(|v| v.is_finite());
    let all = (0..series.len()).flat_map(|i| (0..m).filter_map(move |j| value(i, j)));
    let Some((lo, hi)) = finite_range(all) else {
        svg.frame(plot);
        svg.no_data(plot);
        return svg.finish();
    };
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let hi = if lo == hi {
        if percent { 0.01 } else { 1.0 }
    } else {
        hi
    };
    let axis = Axis::nice(lo, hi, 5, 0.0);
    svg.y_axis(plot, &axis, percent);

    let group_w = plot.w / m as f64;
    let bar_w = group_w * 0.8 / per_group;
    let zero_y = plot.at_y(axis.unit(0.0));
    for (j, category) in categories.iter().enumerate() {
        for (i, s) in series.iter().enumerate() {
            let Some(v) = value(i, j) else { continue };
            let x = plot.x + j as f64 * group_w + group_w * 0.1 + i as f64 * bar_w;
            let y = plot.at_y(axis.unit(v));
            let tip = format!("{category} / {}: {}", s.label, fmt_value(v, percent, 4));
            svg.rect(
                x,
                y.min(zero_y),
                bar_w,
                (y - zero_y).abs(),
                color(i),
                "bar",
                Some(&tip),
            );
        }
    }
    svg.put(format_args!(
        "<line class=\"zero\" x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{AXIS_COLOR}\" stroke-width=\"1\"/>\n",
        svg.fx(plot.x),
        svg.fx(plot.right()),
        y = svg.fy(zero_y)
    ));
    svg.frame(plot);

    for (j, label) in cat_labels.iter().enumerate() {
        let x = plot.x + (j as f64 + 0.5) * group_w;
        if rotate {
            let y = plot.bottom() + 12.0;
            svg.text(x, y, "end", 11.0, TEXT_COLOR, label, Some(-45.0));
        } else {
            svg.text(
                x,
                plot.bottom() + 18.0,
                "middle",
                12.0,
                TEXT_COLOR,
                label,
                None,
            );
        }
    }
    svg.finish()
}

// ---------------------------------------------------------------------------
// Data helpers

/// Minimum and maximum of the finite values, or `None` when there are none.
fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Widens a degenerate range `lo == hi` symmetrically (by 10% of the value,
/// or by `zero_pad` around 0) so that it can be mapped to pixels.
fn padded(lo: f64, hi: f64, zero_pad: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        let pad = if lo == 0.0 { zero_pad } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    }
}

/// Drawdown `value / running max − 1` (≤ 0) of a wealth curve. Gaps stay
/// gaps; points where the running maximum is not positive have no drawdown.
fn drawdown(wealth: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut peak = f64::NEG_INFINITY;
    wealth
        .iter()
        .map(|v| {
            let v = (*v)?;
            peak = peak.max(v);
            let d = (v / peak - 1.0).min(0.0);
            (peak > 0.0 && d.is_finite()).then_some(d)
        })
        .collect()
}

/// Cuts `label` to at most `max` characters, marking the cut with "…".
fn truncate(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

// ---------------------------------------------------------------------------
// Number formatting

/// Fixed-precision number without a negative zero ("-0.00" becomes "0.00").
fn fixed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// Coordinate formatting: two decimals.
fn num(v: f64) -> String {
    fixed(v, 2)
}

/// A data value, in percent (of `v * 100`) when `percent` is true.
fn fmt_value(v: f64, percent: bool, decimals: usize) -> String {
    if percent {
        format!("{}%", fixed(v * 100.0, decimals))
    } else {
        fixed(v, decimals)
    }
}

/// Decimals needed to tell ticks `step` apart (0 to 6).
fn decimals_for(step: f64) -> usize {
    if step.is_finite() && step > 0.0 {
        (-step.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        2
    }
}

// ---------------------------------------------------------------------------
// Geometry

/// A plot area in SVG user units.
#[derive(Clone, Copy)]
struct Frame {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Frame {
    fn right(&self) -> f64 {
        self.x + self.w
    }

    fn bottom(&self) -> f64 {
        self.y + self.h
    }

    /// x coordinate of the fraction `t` of the width (clamped to the frame).
    fn at_x(&self, t: f64) -> f64 {
        self.x + clamp01(t) * self.w
    }

    /// y coordinate of the fraction `t` of the height, measured from the
    /// bottom (clamped to the frame).
    fn at_y(&self, t: f64) -> f64 {
        self.bottom() - clamp01(t) * self.h
    }
}

fn clamp01(t: f64) -> f64 {
    if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) }
}

/// A linear value axis `[lo, hi]` with ticks at multiples of `step`.
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Axis {
    /// Axis covering `[lo, hi]` (requires `lo < hi`), widened to multiples
    /// of a "nice" step (1, 2 or 5 × 10^k, at least `min_step`) giving about
    /// `target` intervals.
    fn nice(lo: f64, hi: f64, target: usize, min_step: f64) -> Axis {
        let step = nice_step((hi - lo) / target.max(1) as f64).max(min_step);
        let (nlo, nhi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
        if step.is_finite() && step > 0.0 && nlo.is_finite() && nhi.is_finite() && nhi > nlo {
            Axis {
                lo: nlo,
                hi: nhi,
                step,
            }
        } else {
            Axis {
                lo,
                hi,
                step: f64::NAN,
            }
        }
    }

    /// Axis exactly `[lo, hi]` with ticks at the multiples of a nice step
    /// inside it.
    fn exact(lo: f64, hi: f64, target: usize) -> Axis {
        Axis {
            lo,
            hi,
            step: nice_step((hi - lo) / target.max(1) as f64),
        }
    }

    /// Position of `v` as a fraction of the axis, clamped to `[0, 1]`.
    /// Halves are used so that extreme ranges do not overflow.
    fn unit(&self, v: f64) -> f64 {
        let t = (v * 0.5 - self.lo * 0.5) / (self.hi * 0.5 - self.lo * 0.5);
        clamp01(t)
    }

    /// Tick values; just the ends when no usable step exists.
    fn ticks(&self) -> Vec<f64> {
        let s = self.step;
        if s.is_finite() && s > 0.0 {
            let k0 = (self.lo / s - 1e-9).ceil();
            let k1 = (self.hi / s + 1e-9).floor();
            if k0.is_finite() && k1.is_finite() && k1 >= k0 && k1 - k0 <= 50.0 {
                return (0..=(k1 - k0) as usize)
                    .map(|i| (k0 + i as f64) * s)
                    .collect();
            }
        }
        vec![self.lo, self.hi]
    }

    /// Tick label with enough decimals for the step.
    fn label(&self, v: f64, percent: bool) -> String {
        let step = if self.step.is_finite() {
            self.step
        } else {
            self.hi - self.lo
        };
        if percent {
            fmt_value(v, true, decimals_for(step * 100.0))
        } else {
            fixed(v, decimals_for(step))
        }
    }
}

/// Rounds `raw` up to 1, 2 or 5 × 10^k; NaN when `raw` is not positive/finite.
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

/// The runs of consecutive points, split where a point is `None`.
fn runs(points: impl Iterator<Item = Option<(f64, f64)>>) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for p in points {
        match p {
            Some(p) => out.last_mut().expect("non-empty").push(p),
            None if out.last().is_some_and(|r| !r.is_empty()) => out.push(Vec::new()),
            None => {}
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// Path data for a polyline through the points; `None` entries break the
/// line. Isolated points become zero-length segments (visible with round
/// caps). Returns `None` when there is no point at all.
fn polyline(svg: &Svg, points: impl Iterator<Item = Option<(f64, f64)>>) -> Option<String> {
    let mut d = String::new();
    for mut run in runs(points) {
        if let [(x, y)] = run.as_slice() {
            run.push((*x, *y));
        }
        for (k, (x, y)) in run.iter().enumerate() {
            let cmd = if k == 0 { 'M' } else { 'L' };
            let sep = if d.is_empty() { "" } else { " " };
            let _ = write!(d, "{sep}{cmd}{},{}", svg.fx(*x), svg.fy(*y));
        }
    }
    (!d.is_empty()).then_some(d)
}

/// Path data for areas between the points and the horizontal line `base_y`,
/// one closed sub-path per run of consecutive points.
fn area(
    svg: &Svg,
    points: impl Iterator<Item = Option<(f64, f64)>>,
    base_y: f64,
) -> Option<String> {
    let mut d = String::new();
    for run in runs(points) {
        let (x0, x1) = (run[0].0, run[run.len() - 1].0);
        let sep = if d.is_empty() { "" } else { " " };
        let _ = write!(d, "{sep}M{},{}", svg.fx(x0), svg.fy(base_y));
        for (x, y) in &run {
            let _ = write!(d, " L{},{}", svg.fx(*x), svg.fy(*y));
        }
        let _ = write!(d, " L{},{} Z", svg.fx(x1), svg.fy(base_y));
    }
    (!d.is_empty()).then_some(d)
}

// ---------------------------------------------------------------------------
// Legend

struct LegendLayout {
    /// Position (x, row) of each entry.
    entries: Vec<(f64, usize)>,
    rows: usize,
}

/// Lays legend entries out left to right between `x0` and `x1`, wrapping to
/// new rows as needed.
fn legend_layout(labels: &[String], x0: f64, x1: f64) -> LegendLayout {
    let mut entries = Vec::with_capacity(labels.len());
    let (mut x, mut row) = (x0, 0);
    for label in labels {
        let w = 18.0 + label.chars().count() as f64 * CHAR_W + 16.0;
        if x > x0 && x + w > x1 {
            x = x0;
            row += 1;
        }
        entries.push((x, row));
        x += w;
    }
    let rows = if labels.is_empty() { 0 } else { row + 1 };
    LegendLayout { entries, rows }
}

fn draw_legend(svg: &mut Svg, labels: &[String], layout: &LegendLayout, y0: f64) {
    for (k, (label, &(x, row))) in labels.iter().zip(&layout.entries).enumerate() {
        let y = y0 + row as f64 * LEGEND_ROW_H;
        svg.put(format_args!(
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n",
            svg.fx(x),
            svg.fy(y - 10.0),
            color(k)
        ));
        svg.text(x + 18.0, y, "start", 12.0, TEXT_COLOR, label, None);
    }
}

// ---------------------------------------------------------------------------
// SVG writer

/// Accumulates an SVG document; every coordinate it writes is clamped to
/// `[0, w] × [0, h]`.
struct Svg {
    out: String,
    w: f64,
    h: f64,
}

impl Svg {
    /// Starts a document with a white background, a `<title>` and the title
    /// drawn at the top.
    fn new(w: f64, h: f64, title: &str) -> Svg {
        let mut svg = Svg {
            out: String::new(),
            w,
            h,
        };
        let (ws, hs) = (num(w), num(h));
        let t = escape(title);
        svg.put(format_args!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{ws}\" height=\"{hs}\" viewBox=\"0 0 {ws} {hs}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n<title>{t}</title>\n\
             <rect x=\"0\" y=\"0\" width=\"{ws}\" height=\"{hs}\" fill=\"#ffffff\"/>\n"
        ));
        svg.text(w / 2.0, 24.0, "middle", 16.0, TEXT_COLOR, title, None);
        svg
    }

    /// Appends formatted text. Writing to a `String` cannot fail.
    fn put(&mut self, args: fmt::Arguments) {
        let _ = self.out.write_fmt(args);
    }

    /// Clamped, formatted x coordinate.
    fn fx(&self, x: f64) -> String {
        num(clamp_to(x, self.w))
    }

    /// Clamped, formatted y coordinate.
    fn fy(&self, y: f64) -> String {
        num(clamp_to(y, self.h))
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        &mut self,
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        stroke: &str,
        width: f64,
        class: Option<&str>,
    ) {
        let class = class.map(|c| format!(" class=\"{c}\"")).unwrap_or_default();
        self.put(format_args!(
            "<line{class} x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{stroke}\" stroke-width=\"{}\"/>\n",
            self.fx(x1),
            self.fy(y1),
            self.fx(x2),
            self.fy(y2),
            num(width)
        ));
    }

    /// A filled rectangle, clipped to the document, with an optional tooltip.
    #[allow(clippy::too_many_arguments)]
    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, class: &str, tip: Option<&str>) {
        let (x, y) = (clamp_to(x, self.w), clamp_to(y, self.h));
        let w = clamp_to(w, self.w - x);
        let h = clamp_to(h, self.h - y);
        let (xs, ys, ws, hs) = (num(x), num(y), num(w), num(h));
        match tip {
            Some(tip) => self.put(format_args!(
                "<rect class=\"{class}\" x=\"{xs}\" y=\"{ys}\" width=\"{ws}\" height=\"{hs}\" fill=\"{fill}\">\
                 <title>{}</title></rect>\n",
                escape(tip)
            )),
            None => self.put(format_args!(
                "<rect class=\"{class}\" x=\"{xs}\" y=\"{ys}\" width=\"{ws}\" height=\"{hs}\" fill=\"{fill}\"/>\n"
            )),
        }
    }

    /// Text at (x, y), optionally rotated by `rotate` degrees around that point.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        x: f64,
        y: f64,
        anchor: &str,
        size: f64,
        fill: &str,
        content: &str,
        rotate: Option<f64>,
    ) {
        let (xs, ys) = (self.fx(x), self.fy(y));
        let transform = rotate
            .map(|deg| format!(" transform=\"rotate({} {xs} {ys})\"", num(deg)))
            .unwrap_or_default();
        self.put(format_args!(
            "<text x=\"{xs}\" y=\"{ys}\" text-anchor=\"{anchor}\" font-size=\"{}\" fill=\"{fill}\"{transform}>{}</text>\n",
            num(size),
            escape(content)
        ));
    }

    /// Outline of a plot frame.
    fn frame(&mut self, f: Frame) {
        self.put(format_args!(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"{AXIS_COLOR}\" stroke-width=\"1\"/>\n",
            self.fx(f.x),
            self.fy(f.y),
            num(clamp_to(f.w, self.w - clamp_to(f.x, self.w))),
            num(clamp_to(f.h, self.h - clamp_to(f.y, self.h)))
        ));
    }

    /// "no data" note in the middle of a frame.
    fn no_data(&mut self, f: Frame) {
        self.text(
            f.x + f.w / 2.0,
            f.y + f.h / 2.0,
            "middle",
            14.0,
            MUTED_COLOR,
            "no data",
            None,
        );
    }

    /// Horizontal grid lines and tick labels on the left of the frame.
    fn y_axis(&mut self, f: Frame, axis: &Axis, percent: bool) {
        for v in axis.ticks() {
            let y = f.at_y(axis.unit(v));
            self.line(f.x, y, f.right(), y, GRID_COLOR, 1.0, None);
            self.line(f.x - 4.0, y, f.x, y, AXIS_COLOR, 1.0, None);
            let label = axis.label(v, percent);
            self.text(f.x - 7.0, y + 4.0, "end", 11.0, TEXT_COLOR, &label, None);
        }
    }

    /// Tick marks and labels below the frame.
    fn x_axis(&mut self, f: Frame, axis: &Axis, percent: bool) {
        for v in axis.ticks() {
            let x = f.at_x(axis.unit(v));
            self.line(x, f.bottom(), x, f.bottom() + 4.0, AXIS_COLOR, 1.0, None);
            let label = axis.label(v, percent);
            self.text(
                x,
                f.bottom() + 18.0,
                "middle",
                11.0,
                TEXT_COLOR,
                &label,
                None,
            );
        }
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

/// Clamps `v` to `[0, max]` (NaN becomes 0).
fn clamp_to(v: f64, max: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, max.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roxmltree::{Document, Node};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    fn dates(n: usize) -> Vec<NaiveDate> {
        (0..n)
            .map(|i| d(2024, 1, 1) + chrono::Days::new(i as u64))
            .collect()
    }

    fn s(label: &str, values: &[f64]) -> Series {
        Series {
            label: label.to_string(),
            values: values.to_vec(),
        }
    }

    fn parse(svg: &str) -> Document<'_> {
        Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed: {e}\n{svg}"))
    }

    fn with_class<'a, 'i>(doc: &'a Document<'i>, tag: &str, class: &str) -> Vec<Node<'a, 'i>> {
        doc.descendants()
            .filter(|n| n.has_tag_name(tag) && n.attribute("class") == Some(class))
            .collect()
    }

    fn attr(n: &Node, name: &str) -> f64 {
        n.attribute(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("numeric {name}"))
    }

    /// Numbers of a path's `d` (all commands use absolute x,y pairs).
    fn path_points(d: &str) -> Vec<(f64, f64)> {
        let nums: Vec<f64> = d
            .replace(['M', 'L', 'Z', ','], " ")
            .split_whitespace()
            .map(|t| t.parse().unwrap_or_else(|_| panic!("bad path token {t:?}")))
            .collect();
        assert_eq!(nums.len() % 2, 0, "odd number of coordinates in {d}");
        nums.chunks(2).map(|c| (c[0], c[1])).collect()
    }

    /// Checks the document shape and that every coordinate lies in the viewBox.
    fn check(svg: &str) -> Document<'_> {
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        let doc = parse(svg);
        let root = doc.root_element();
        let vb: Vec<f64> = root
            .attribute("viewBox")
            .expect("viewBox")
            .split_whitespace()
            .map(|v| v.parse().expect("numeric viewBox"))
            .collect();
        let (w, h) = (vb[2], vb[3]);
        assert_eq!(attr(&root, "width"), w);
        assert_eq!(attr(&root, "height"), h);
        assert!(root.children().any(|n| n.has_tag_name("title")));
        assert!(
            doc.descendants().any(|n| n.has_tag_name("rect")
                && n.attribute("fill") == Some("#ffffff")
                && attr(&n, "width") == w
                && attr(&n, "height") == h),
            "white background"
        );
        let inside = |v: f64, max: f64| (0.0..=max).contains(&v);
        for n in doc.descendants().filter(|n| n.is_element()) {
            for a in n.attributes() {
                let max = match a.name() {
                    "x" | "x1" | "x2" | "cx" => w,
                    "y" | "y1" | "y2" | "cy" => h,
                    "width" | "height" => f64::INFINITY,
                    _ => continue,
                };
                let v: f64 = a
                    .value()
                    .parse()
                    .unwrap_or_else(|_| panic!("numeric {}", a.name()));
                assert!(inside(v, max), "{}={v} outside viewBox", a.name());
            }
            if n.has_tag_name("rect") {
                assert!(attr(&n, "x") + attr(&n, "width") <= w + 1e-9);
                assert!(attr(&n, "y") + attr(&n, "height") <= h + 1e-9);
                assert!(attr(&n, "width") >= 0.0 && attr(&n, "height") >= 0.0);
            }
            if let Some(d) = n.attribute("d") {
                for (x, y) in path_points(d) {
                    assert!(
                        inside(x, w) && inside(y, h),
                        "path point ({x}, {y}) outside viewBox"
                    );
                }
            }
        }
        doc
    }

    fn texts(doc: &Document) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(str::to_string))
            .collect()
    }

    #[test]
    fn equity_draws_one_path_per_series_with_data() {
        let nan = f64::NAN;
        let series = [
            s("agent", &[1.0, 1.1, 0.9, 1.2]),
            s("buy & hold", &[1.0, nan, 1.05, 1.1]),
            s("empty", &[nan, nan, nan, nan]),
        ];
        let svg = equity_drawdown("Equity", &dates(4), &series);
        let doc = check(&svg);
        let paths = with_class(&doc, "path", "series");
        assert_eq!(paths.len(), 2);
        // The series with a gap is drawn in two pieces: "M a L b" isn't
        // possible across the gap, so it has two move-to commands.
        let gapped = paths
            .iter()
            .find(|p| p.attribute("stroke") == Some(PALETTE[1]))
            .expect("second series path");
        assert_eq!(gapped.attribute("d").expect("d").matches('M').count(), 2);
        // Drawdown: area for the agent, line for the second series.
        let dd = with_class(&doc, "path", "drawdown");
        assert_eq!(dd.len(), 2);
        assert!(dd.iter().any(|p| p.attribute("fill") == Some(PALETTE[0])));
        let t = texts(&doc);
        assert!(t.contains(&"buy & hold".to_string()));
        assert!(t.contains(&"2024-01-01".to_string()) && t.contains(&"2024-01-04".to_string()));
        assert!(t.contains(&"2024-01-02".to_string()), "middle date");
        assert!(
            t.iter().any(|l| l.ends_with('%')),
            "drawdown axis in percent"
        );
    }

    #[test]
    fn equity_agent_path_follows_values() {
        // Increasing values must give decreasing y (SVG y grows downwards),
        // evenly spaced x from the left to the right of the panel.
        let svg = equity_drawdown("t", &dates(3), &[s("a", &[1.0, 2.0, 3.0])]);
        let doc = check(&svg);
        let path = with_class(&doc, "path", "series")[0]
            .attribute("d")
            .expect("d")
            .to_string();
        let pts = path_points(&path);
        assert_eq!(pts.len(), 3);
        assert!(pts[0].1 > pts[1].1 && pts[1].1 > pts[2].1);
        assert!(((pts[1].0 - pts[0].0) - (pts[2].0 - pts[1].0)).abs() < 0.02);
    }

    #[test]
    fn drawdown_is_relative_to_running_max() {
        let w = [Some(1.0), Some(2.0), Some(1.0), None, Some(1.5), Some(3.0)];
        assert_eq!(
            drawdown(&w),
            vec![
                Some(0.0),
                Some(0.0),
                Some(-0.5),
                None,
                Some(-0.25),
                Some(0.0)
            ]
        );
        // No drawdown while the running maximum is not positive.
        assert_eq!(
            drawdown(&[Some(-1.0), Some(0.0), Some(2.0)]),
            vec![None, None, Some(0.0)]
        );
    }

    #[test]
    fn histogram_bar_heights_follow_counts() {
        let svg = histogram("Returns", &[0.0, 0.0, 0.0, 1.0, f64::NAN], 2, false);
        let doc = check(&svg);
        let bars = with_class(&doc, "rect", "bar");
        assert_eq!(bars.len(), 2);
        let (h0, h1) = (attr(&bars[0], "height"), attr(&bars[1], "height"));
        assert!(
            h1 > 0.0 && (h0 / h1 - 3.0).abs() < 0.01,
            "heights {h0} {h1}"
        );
        // Bars stand on the same baseline.
        let base0 = attr(&bars[0], "y") + h0;
        let base1 = attr(&bars[1], "y") + h1;
        assert!((base0 - base1).abs() < 0.02);
        let t = texts(&doc);
        assert!(t.contains(&"n = 4".to_string()), "{t:?}");
        assert!(t.contains(&"mean = 0.2500".to_string()), "{t:?}");
        assert!(t.contains(&"std = 0.5000".to_string()), "{t:?}");
    }

    #[test]
    fn histogram_skips_empty_bins_and_marks_zero() {
        let svg = histogram("h", &[-1.0, -1.0, 1.0], 3, true);
        let doc = check(&svg);
        assert_eq!(with_class(&doc, "rect", "bar").len(), 2);
        assert_eq!(with_class(&doc, "line", "zero").len(), 1);
        assert!(
            texts(&doc).iter().any(|t| t == "-100%"),
            "{:?}",
            texts(&doc)
        );

        let doc2 = histogram("h", &[1.0, 2.0, 3.0], 3, false);
        let doc2 = check(&doc2);
        assert_eq!(with_class(&doc2, "rect", "bar").len(), 3);
        assert!(with_class(&doc2, "line", "zero").is_empty());
    }

    #[test]
    fn grouped_bars_skip_nan_and_grow_from_zero() {
        let cats: Vec<String> = ["f1", "f2", "f3"].iter().map(|c| c.to_string()).collect();
        let series = [
            s("agent", &[0.1, -0.2, f64::NAN]),
            s("base", &[0.0, 0.05, 0.3]),
        ];
        let svg = grouped_bars("Sharpe", &cats, &series, true);
        let doc = check(&svg);
        let bars = with_class(&doc, "rect", "bar");
        assert_eq!(bars.len(), 5);
        assert!(
            bars.iter().any(|b| attr(b, "height") == 0.0),
            "zero-height bar present"
        );
        let zero = with_class(&doc, "line", "zero");
        assert_eq!(zero.len(), 1);
        let zy = attr(&zero[0], "y1");
        for b in &bars {
            let (y, h) = (attr(b, "y"), attr(b, "height"));
            assert!(
                (y - zy).abs() < 0.02 || (y + h - zy).abs() < 0.02,
                "bar not anchored at zero"
            );
        }
        // Heights proportional to |value|: 0.3 vs 0.1 vs -0.2.
        let height_of = |fill: &str, k: usize| {
            attr(
                bars.iter()
                    .filter(|b| b.attribute("fill") == Some(fill))
                    .nth(k)
                    .expect("bar"),
                "height",
            )
        };
        let (a0, a1, b2) = (
            height_of(PALETTE[0], 0),
            height_of(PALETTE[0], 1),
            height_of(PALETTE[1], 2),
        );
        assert!((a1 / a0 - 2.0).abs() < 0.01 && (b2 / a0 - 3.0).abs() < 0.01);
        let t = texts(&doc);
        assert!(t.iter().any(|l| l.ends_with('%')));
        assert!(
            !doc.descendants()
                .any(|n| n.attribute("transform").is_some())
        );
    }

    #[test]
    fn grouped_bars_rotate_many_categories() {
        let cats: Vec<String> = (0..12).map(|i| format!("fold {i}")).collect();
        let svg = grouped_bars("t", &cats, &[s("a", &[1.0; 12])], false);
        let doc = check(&svg);
        assert_eq!(with_class(&doc, "rect", "bar").len(), 12);
        let rotated = doc
            .descendants()
            .filter(|n| {
                n.attribute("transform")
                    .is_some_and(|t| t.starts_with("rotate(-45.00 "))
            })
            .count();
        assert_eq!(rotated, 12);
    }

    #[test]
    fn titles_and_labels_are_escaped() {
        let title = "a <&\"> b";
        // Title text, plus legend / category labels where the chart has them.
        for (svg, label_count) in [
            (
                equity_drawdown(title, &dates(2), &[s(title, &[1.0, 2.0])]),
                2,
            ),
            (histogram(title, &[1.0, 2.0], 4, false), 1),
            (
                grouped_bars(title, &[title.to_string()], &[s(title, &[1.0])], false),
                3,
            ),
        ] {
            let doc = check(&svg);
            let t = doc
                .root_element()
                .children()
                .find(|n| n.has_tag_name("title"))
                .expect("title");
            assert_eq!(t.text(), Some(title));
            assert_eq!(
                texts(&doc).iter().filter(|t| *t == title).count(),
                label_count
            );
        }
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let nan = f64::NAN;
        let inf = f64::INFINITY;
        let cases = vec![
            equity_drawdown("", &[], &[]),
            equity_drawdown("t", &dates(3), &[]),
            equity_drawdown("t", &[], &[s("a", &[1.0, 2.0])]),
            equity_drawdown("t", &dates(1), &[s("a", &[1.0])]),
            equity_drawdown("t", &dates(3), &[s("a", &[2.0, 2.0, 2.0]), s("b", &[])]),
            equity_drawdown("t", &dates(3), &[s("a", &[nan, inf, -inf])]),
            equity_drawdown(
                "t",
                &dates(3),
                &[
                    s("a", &[0.0, -1.0, 1e308]),
                    s("b", &[-1e308, f64::MAX, 0.0]),
                ],
            ),
            histogram("t", &[], 10, true),
            histogram("t", &[nan, inf], 10, true),
            histogram("t", &[0.5], 0, false),
            histogram("t", &[0.0, 0.0], 5, true),
            histogram("t", &[f64::MAX, -f64::MAX, 0.0], 7, false),
            histogram("t", &[1.0, 2.0], usize::MAX, false),
            grouped_bars("t", &[], &[], false),
            grouped_bars("t", &["a".to_string()], &[], false),
            grouped_bars("t", &["a".to_string()], &[s("x", &[])], true),
            grouped_bars("t", &["a".to_string()], &[s("x", &[0.0])], true),
            grouped_bars("t", &["a".to_string()], &[s("x", &[nan, 1.0])], false),
            grouped_bars(
                "t",
                &["a".to_string(), "b".to_string()],
                &[s("x", &[f64::MAX, -f64::MAX])],
                false,
            ),
        ];
        for svg in &cases {
            check(svg);
        }
        // Nothing finite: frame plus a "no data" note.
        for svg in [
            &cases[0], &cases[2], &cases[5], &cases[7], &cases[8], &cases[13], &cases[15],
            &cases[17],
        ] {
            assert!(svg.contains(">no data</text>"), "{svg}");
        }
        // A single point still yields a (zero-length) series path.
        assert_eq!(with_class(&check(&cases[3]), "path", "series").len(), 1);
        assert_eq!(with_class(&check(&cases[9]), "rect", "bar").len(), 1);
        assert_eq!(with_class(&check(&cases[10]), "rect", "bar").len(), 1);
    }

    #[test]
    fn output_is_deterministic() {
        let make = || {
            (
                equity_drawdown(
                    "t",
                    &dates(5),
                    &[s("a", &[1.0, 1.2, 1.1, 1.3, 1.25]), s("b", &[1.0; 5])],
                ),
                histogram("t", &[0.01, -0.02, 0.003, 0.0], 4, true),
                grouped_bars("t", &["x".to_string()], &[s("a", &[0.3])], false),
            )
        };
        assert_eq!(make(), make());
    }

    #[test]
    fn palette_cycles() {
        assert_eq!(color(0), "#1f77b4");
        assert_eq!(color(PALETTE.len()), color(0));
        assert_ne!(color(1), color(0));
    }

    #[test]
    fn nice_axis_covers_range() {
        let a = Axis::nice(0.93, 1.27, 5, 0.0);
        assert!(a.lo <= 0.93 && a.hi >= 1.27);
        assert_eq!(a.step, 0.1);
        let ticks = a.ticks();
        assert_eq!(ticks.first().copied(), Some(a.lo));
        assert!((ticks.last().copied().unwrap_or(0.0) - a.hi).abs() < 1e-9);
        assert_eq!(a.label(1.0, false), "1.0");
        assert_eq!(Axis::nice(-0.123, 0.0, 4, 0.0).label(-0.05, true), "-5%");
    }
}
