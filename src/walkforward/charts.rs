//! SVG charts for the walk-forward evaluation report, drawn with plotters' SVG backend
//! (the shared plumbing — document, scales, palette — is in [`crate::plot`]).
//!
//! Every function returns a complete, standalone SVG document (no fonts or other
//! resources referenced; text uses the generic `sans-serif` family):
//!
//! * [`equity_drawdown`] — equity curves (e.g. a wealth index starting at 1.0) of the
//!   agent and its baselines over trading days in a top panel, and the drawdown of each
//!   curve from its running maximum, in percent, in a bottom panel (filled area for the
//!   first series, lines for the others). The shared date axis has a tick at the first
//!   trading day of each month (or quarter, year, ...).
//! * [`histogram`] — distribution of a sample (e.g. daily returns) in equal-width bins
//!   between its minimum and maximum, with a dashed marker at zero, a line at the mean
//!   and the sample size, mean and standard deviation in a corner.
//! * [`grouped_bars`] — one group of bars per category with one bar per series, e.g. a
//!   metric per walk-forward fold for agent and baselines.
//!
//! Conventions shared by all charts:
//!
//! * Non-finite values (NaN, ±inf) are skipped. When nothing finite is left, the axes
//!   are drawn with a "no data" note.
//! * Everything is drawn inside the document; values are clamped to their axes.
//! * The same input always produces the same bytes (no randomness, clock or hash order;
//!   plotters writes integer pixel coordinates).
//! * Series take colors from a fixed palette of 8 colors (the first one is meant for the
//!   agent), cycling when there are more series; legends sit above the plot.
//! * Data elements carry a `class` attribute: `series` (equity lines, one element per
//!   unbroken run of points), `drawdown` (drawdown lines, the first series' outline
//!   included), `drawdown-area` (the first series' filled drawdown), `bar` (histogram
//!   and grouped bars, each with a `<title>` tooltip), `zero` (zero lines) and `mean`
//!   (the histogram's mean).

use crate::plot::{
    AXIS_COLOR, Class, DrawResult, GRID_COLOR, MUTED_COLOR, Root, Scale, TEXT_COLOR, color,
    finite_range, fixed, no_data, padded, svg_document, text, text_width,
};
use chrono::{Datelike, NaiveDate};
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One named series of a chart.
pub struct Series {
    pub label: String,
    pub values: Vec<f64>,
}

/// Longest legend label (in characters) before it is truncated with "…".
const LEGEND_LABEL_MAX: usize = 40;
/// Longest category label (in characters) before it is truncated with "…".
const CATEGORY_LABEL_MAX: usize = 24;
/// Upper bound on histogram bins, to keep documents reasonably small.
const MAX_BINS: usize = 1000;
/// Height of the title row of every chart.
const TITLE_H: u32 = 36;
/// Height of one legend row.
const LEGEND_ROW_H: u32 = 20;
/// Space left of the y label area, and right of the plot.
const PAD_L: u32 = 8;
const PAD_R: u32 = 24;
/// Font sizes: title, legend and axis descriptions, tick labels.
const TITLE_PX: f64 = 16.0;
const LABEL_PX: f64 = 12.0;
const TICK_PX: f64 = 11.0;

/// Equity curves with a drawdown panel.
///
/// The top panel draws every series against `dates` (value `i` of a series belongs to
/// `dates[i]`, evenly spaced; missing or non-finite values leave gaps). The bottom panel
/// draws the drawdown `value / running max − 1` of each series in percent: a filled area
/// for the first series and lines for the others. Drawdowns are only defined while the
/// running maximum is positive.
pub fn equity_drawdown(title: &str, dates: &[NaiveDate], series: &[Series]) -> String {
    const WIDTH: u32 = 960;
    const TOP_H: u32 = 300;
    const DD_H: u32 = 150;
    const GAP: u32 = 24;
    const X_AREA: u32 = 46;

    let n = dates.len();
    let wealth: Vec<Vec<Option<f64>>> = series
        .iter()
        .map(|s| {
            (0..n)
                .map(|i| s.values.get(i).copied().filter(|v| v.is_finite()))
                .collect()
        })
        .collect();
    let drawdowns: Vec<Vec<Option<f64>>> = wealth.iter().map(|w| drawdown(w)).collect();
    let range = finite_range(wealth.iter().flatten().flatten().copied());
    let (top_scale, dd_scale) = match range {
        Some((lo, hi)) => {
            let (lo, hi) = padded(lo, hi, 1.0);
            let min_dd = drawdowns
                .iter()
                .flatten()
                .flatten()
                .copied()
                .fold(0.0_f64, f64::min);
            (
                Scale::nice(lo, hi, 6, 0.0, false),
                Scale::nice(if min_dd < 0.0 { min_dd } else { -0.01 }, 0.0, 4, 0.0, true),
            )
        }
        None => (Scale::empty(), Scale::empty()),
    };
    let y_area = y_area_width(
        top_scale
            .label_width(TICK_PX)
            .max(dd_scale.label_width(TICK_PX)),
    );
    let plot_w = WIDTH.saturating_sub(PAD_L + y_area + PAD_R).max(1);
    let ticks = if range.is_some() {
        date_ticks(dates, plot_w)
    } else {
        Vec::new()
    };
    let x_scale = match range {
        Some(_) if n > 1 => Scale::with_ticks(0.0, (n - 1) as f64, ticks),
        Some(_) => Scale::with_ticks(-1.0, 1.0, ticks),
        None => Scale::empty(),
    };
    // Room on the right for the last date label when it is (near) the last day.
    let pad_r = x_scale.ticks().last().map_or(PAD_R, |(v, label)| {
        let room = (1.0 - x_scale.unit(*v)) * f64::from(plot_w);
        let overhang = f64::from(text_width(label, TICK_PX)) / 2.0 - room;
        PAD_R.max(overhang.ceil() as u32 + 4)
    });
    let x_desc = match (dates.first(), dates.last()) {
        (Some(a), Some(b)) if range.is_some() => format!(
            "{} to {} ({n} day{})",
            a.format("%Y-%m-%d"),
            b.format("%Y-%m-%d"),
            if n == 1 { "" } else { "s" }
        ),
        _ => String::new(),
    };

    let labels: Vec<String> = series
        .iter()
        .map(|s| truncate(&s.label, LEGEND_LABEL_MAX))
        .collect();
    let legend = Legend::new(
        &labels,
        Swatch::Line,
        PAD_L + y_area,
        WIDTH.saturating_sub(pad_r),
    );
    let height = TITLE_H + legend.height() + 8 + TOP_H + GAP + DD_H + X_AREA + 6;

    svg_document((WIDTH, height), title, |root| {
        let rest = draw_title(root, title)?;
        let (head, rest) = rest.split_vertically(legend.height());
        legend.draw(&head)?;
        let (top_area, dd_area) = rest.split_vertically(8 + TOP_H);
        let dd_area = dd_area.margin(GAP, 6, 0, 0);

        let mut top = ChartBuilder::on(&top_area)
            .margin_top(8)
            .margin_left(PAD_L)
            .margin_right(pad_r)
            .y_label_area_size(y_area)
            .build_cartesian_2d(x_scale.clone(), top_scale)?;
        mesh(&mut top, "Equity", "")?;
        let mut dd = ChartBuilder::on(&dd_area)
            .margin_left(PAD_L)
            .margin_right(pad_r)
            .y_label_area_size(y_area)
            .x_label_area_size(X_AREA)
            .build_cartesian_2d(x_scale, dd_scale)?;
        mesh(&mut dd, "Drawdown", &x_desc)?;
        if range.is_none() {
            no_data(top.plotting_area())?;
            return Ok(Vec::new());
        }
        frame(top.plotting_area())?;
        frame(dd.plotting_area())?;

        // Top panel: the agent last, on top.
        for (k, w) in wealth.iter().enumerate().rev() {
            for run in runs(w) {
                let style = Class::Series.color(color(k));
                if let [p] = run.as_slice() {
                    top.plotting_area()
                        .draw(&Circle::new(*p, 2, style.filled()))?;
                } else {
                    top.plotting_area()
                        .draw(&PathElement::new(run, style.stroke_width(2)))?;
                }
            }
        }

        // Bottom panel: drawdown in percent.
        for (k, d) in drawdowns.iter().enumerate().rev() {
            for mut run in runs(d) {
                let line = Class::Drawdown.color(color(k));
                if k == 0 {
                    dd.draw_series(
                        AreaSeries::new(run, 0.0, Class::DrawdownArea.color(color(0)).filled())
                            .border_style(line.stroke_width(1)),
                    )?;
                } else {
                    if let [p] = run.as_slice() {
                        run.push(*p);
                    }
                    dd.plotting_area()
                        .draw(&PathElement::new(run, line.stroke_width(1)))?;
                }
            }
        }
        Ok(Vec::new())
    })
}

/// Histogram of `values` in `bins` equal-width bins between their minimum and maximum
/// (at least 1 and at most 1000 bins).
///
/// Bars are drawn for non-empty bins only; a dashed vertical line marks 0 when it lies
/// within the range, a line in the second palette color marks the mean. The x axis is
/// formatted in percent when `percent` is true, the y axis shows counts. The sample size,
/// mean and (sample) standard deviation of the finite values are printed in the top-right
/// corner. When all values are equal, the range is widened symmetrically around them.
pub fn histogram(title: &str, values: &[f64], bins: usize, percent: bool) -> String {
    const WIDTH: u32 = 720;
    const HEIGHT: u32 = 420;

    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let range = finite_range(finite.iter().copied())
        .map(|(lo, hi)| padded(lo, hi, if percent { 0.01 } else { 1.0 }));
    let bins = bins.clamp(1, MAX_BINS);
    let (x_scale, counts) = match range {
        Some((lo, hi)) => {
            let x = Scale::exact(lo, hi, 8, percent);
            let mut counts = vec![0_usize; bins];
            for &v in &finite {
                // `unit` is within [0, 1]; the maximum falls into the last bin.
                let i = (x.unit(v) * bins as f64).floor() as usize;
                counts[i.min(bins - 1)] += 1;
            }
            (x, counts)
        }
        None => (Scale::empty(), Vec::new()),
    };
    let max_count = counts.iter().copied().max().unwrap_or(0);
    let y_scale = if range.is_some() {
        Scale::nice(0.0, max_count.max(1) as f64, 5, 1.0, false)
    } else {
        Scale::empty()
    };
    let y_area = y_area_width(y_scale.label_width(TICK_PX));

    // Summary statistics.
    let n = finite.len();
    let mean = finite.iter().sum::<f64>() / n.max(1) as f64;
    let var = if n > 1 {
        finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    let digits = if percent { 3 } else { 4 };
    let stats = [
        format!("n = {n}"),
        format!("mean = {}", fmt_value(mean, percent, digits)),
        format!("std = {}", fmt_value(var.sqrt(), percent, digits)),
    ];

    svg_document((WIDTH, HEIGHT), title, |root| {
        let rest = draw_title(root, title)?;
        let mut chart = ChartBuilder::on(&rest)
            .margin_top(6)
            .margin_left(PAD_L)
            .margin_right(PAD_R)
            .margin_bottom(8)
            .y_label_area_size(y_area)
            .x_label_area_size(30)
            .build_cartesian_2d(x_scale.clone(), y_scale.clone())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID_COLOR)
            .axis_style(AXIS_COLOR)
            .label_style(text(TICK_PX, TEXT_COLOR))
            .axis_desc_style(text(LABEL_PX, MUTED_COLOR))
            .y_desc("Count")
            .set_all_tick_mark_size(4)
            .draw()?;
        let plot = chart.plotting_area();
        let Some((lo, hi)) = range else {
            no_data(plot)?;
            return Ok(Vec::new());
        };
        frame(plot)?;
        let (plot_w, _) = plot.dim_in_pixel();
        let gap = u32::from(plot_w as f64 / bins as f64 > 3.0);
        let mut tips = Vec::new();
        for (i, &count) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let from = lerp(lo, hi, i as f64 / bins as f64);
            let to = lerp(lo, hi, (i + 1) as f64 / bins as f64);
            let mut bar = Rectangle::new(
                [(from, 0.0), (to, count as f64)],
                Class::Bar.color(color(0)).filled(),
            );
            bar.set_margin(0, 0, gap, 0);
            plot.draw(&bar)?;
            tips.push(format!(
                "[{}, {}): {count}",
                fmt_value(from, percent, 4),
                fmt_value(to, percent, 4)
            ));
        }
        let (y0, y1) = (y_scale.lo(), y_scale.hi());
        if lo <= 0.0 && 0.0 <= hi {
            plot.draw(&PathElement::new(
                vec![(0.0, y0), (0.0, y1)],
                Class::ZeroDashed.color(TEXT_COLOR).stroke_width(1),
            ))?;
        }
        plot.draw(&PathElement::new(
            vec![(mean, y0), (mean, y1)],
            Class::Mean.color(color(1)).stroke_width(2),
        ))?;

        // Summary box in the top-right corner, with the mean line's color.
        let area = plot.strip_coord_spec();
        let (w, _) = area.dim_in_pixel();
        let text_w = stats
            .iter()
            .map(|s| text_width(s, LABEL_PX))
            .max()
            .unwrap_or(0);
        let box_w = (text_w + 36).min(w) as i32;
        let x0 = w as i32 - 8 - box_w;
        area.draw(&Rectangle::new(
            [(x0, 8), (x0 + box_w, 8 + 3 * 18 + 8)],
            WHITE.mix(0.9).filled(),
        ))?;
        area.draw(&Rectangle::new(
            [(x0, 8), (x0 + box_w, 8 + 3 * 18 + 8)],
            GRID_COLOR,
        ))?;
        for (k, line) in stats.iter().enumerate() {
            let y = 8 + 4 + 9 + 18 * k as i32;
            if k == 1 {
                area.draw(&PathElement::new(
                    vec![(x0 + 8, y), (x0 + 20, y)],
                    color(1).stroke_width(2),
                ))?;
            }
            area.draw(&Text::new(
                line.clone(),
                (x0 + 26, y),
                text(LABEL_PX, TEXT_COLOR).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        Ok(tips)
    })
}

/// Grouped bar chart: one group per category, one bar per series within a group
/// (`series[i].values[j]` is the value of series `i` in category `j`).
///
/// Missing or non-finite values are skipped (no bar). Bars grow from a zero line; the
/// value axis always includes 0 and is formatted in percent when `percent` is true.
/// Category labels are drawn vertically when they would not fit side by side. The chart
/// gets wider with more bars (720 to 1800 pixels).
pub fn grouped_bars(
    title: &str,
    categories: &[String],
    series: &[Series],
    percent: bool,
) -> String {
    const PLOT_H: u32 = 300;

    let m = categories.len();
    let per_group = series.len().max(1);
    let width = m
        .saturating_mul(per_group.saturating_mul(12).saturating_add(16))
        .saturating_add(96)
        .clamp(720, 1800) as u32;
    let value = |i: usize, j: usize| series[i].values.get(j).copied().filter(|v| v.is_finite());
    let all = (0..series.len()).flat_map(|i| (0..m).filter_map(move |j| value(i, j)));
    let range = finite_range(all).map(|(lo, hi)| {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let hi = if lo == hi {
            if percent { 0.01 } else { 1.0 }
        } else {
            hi
        };
        (lo, hi)
    });
    let y_scale = match range {
        Some((lo, hi)) => Scale::nice(lo, hi, 6, 0.0, percent),
        None => Scale::empty(),
    };
    let y_area = y_area_width(y_scale.label_width(TICK_PX));
    let plot_w = width.saturating_sub(PAD_L + y_area + PAD_R).max(1);
    let group_w = plot_w as f64 / m.max(1) as f64;

    let cat_labels: Vec<String> = categories
        .iter()
        .map(|c| truncate(c, CATEGORY_LABEL_MAX))
        .collect();
    let widest = cat_labels
        .iter()
        .map(|c| text_width(c, TICK_PX))
        .max()
        .unwrap_or(0);
    let vertical = f64::from(widest) > group_w - 6.0;
    let x_area = if vertical { widest + 16 } else { 30 };
    let x_scale = Scale::with_ticks(
        0.0,
        m.max(1) as f64,
        if vertical || range.is_none() {
            Vec::new()
        } else {
            (0..m)
                .map(|j| (j as f64 + 0.5, cat_labels[j].clone()))
                .collect()
        },
    );

    let labels: Vec<String> = series
        .iter()
        .map(|s| truncate(&s.label, LEGEND_LABEL_MAX))
        .collect();
    let legend = Legend::new(
        &labels,
        Swatch::Square,
        PAD_L + y_area,
        width.saturating_sub(PAD_R),
    );
    let height = TITLE_H + legend.height() + 8 + PLOT_H + x_area + 8;

    svg_document((width, height), title, |root| {
        let rest = draw_title(root, title)?;
        let (head, rest) = rest.split_vertically(legend.height());
        legend.draw(&head)?;
        let mut chart = ChartBuilder::on(&rest)
            .margin_top(8)
            .margin_left(PAD_L)
            .margin_right(PAD_R)
            .margin_bottom(8)
            .y_label_area_size(y_area)
            .x_label_area_size(x_area)
            .build_cartesian_2d(x_scale, y_scale)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID_COLOR)
            .axis_style(AXIS_COLOR)
            .label_style(text(TICK_PX, TEXT_COLOR))
            .x_label_style(text(LABEL_PX, TEXT_COLOR))
            .set_all_tick_mark_size(4)
            .draw()?;
        let plot = chart.plotting_area();
        if range.is_none() {
            no_data(plot)?;
            return Ok(Vec::new());
        }
        frame(plot)?;
        // Light separators between groups.
        let (y0, y1) = (chart.y_range().start, chart.y_range().end);
        for j in 1..m {
            plot.draw(&PathElement::new(
                vec![(j as f64, y0), (j as f64, y1)],
                GRID_COLOR,
            ))?;
        }
        let bar_w = 0.8 / per_group as f64;
        let gap = u32::from(group_w * bar_w > 4.0);
        let mut tips = Vec::new();
        for (j, category) in categories.iter().enumerate() {
            for (i, s) in series.iter().enumerate() {
                let Some(v) = value(i, j) else { continue };
                let x = j as f64 + 0.1 + i as f64 * bar_w;
                let mut bar = Rectangle::new(
                    [(x, 0.0), (x + bar_w, v)],
                    Class::Bar.color(color(i)).filled(),
                );
                bar.set_margin(0, 0, 0, gap);
                plot.draw(&bar)?;
                tips.push(format!(
                    "{category} / {}: {}",
                    s.label,
                    fmt_value(v, percent, 4)
                ));
            }
        }
        plot.draw(&PathElement::new(
            vec![(0.0, 0.0), (m as f64, 0.0)],
            Class::Zero.color(AXIS_COLOR),
        ))?;
        if vertical {
            let style = text(TICK_PX, TEXT_COLOR)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Right, VPos::Center));
            for (j, label) in cat_labels.iter().enumerate() {
                let (x, y) = chart.backend_coord(&(j as f64 + 0.5, y0));
                root.draw(&Text::new(label.clone(), (x, y + 8), style.clone()))?;
            }
        }
        Ok(tips)
    })
}

// ---------------------------------------------------------------------------
// Layout helpers

/// Draws the title centered in the top row; returns the area below it.
fn draw_title<'a>(root: &Root<'a>, title: &str) -> DrawResult<Root<'a>> {
    let (head, rest) = root.split_vertically(TITLE_H);
    let (w, h) = head.dim_in_pixel();
    head.draw(&Text::new(
        title.to_string(),
        (w as i32 / 2, h as i32 / 2 + 2),
        ("sans-serif", TITLE_PX * 1.24)
            .into_font()
            .style(FontStyle::Bold)
            .color(&TEXT_COLOR)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(rest)
}

/// Width of a y label area: tick labels of `label_w`, ticks and a rotated axis
/// description.
fn y_area_width(label_w: u32) -> u32 {
    label_w + 8 + 4 + 22
}

/// Grid lines, axes, tick labels and descriptions of a panel.
fn mesh<'a, 'b>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<Scale, Scale>>,
    y_desc: &str,
    x_desc: &str,
) -> DrawResult {
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(GRID_COLOR)
        .axis_style(AXIS_COLOR)
        .label_style(text(TICK_PX, TEXT_COLOR))
        .axis_desc_style(text(LABEL_PX, MUTED_COLOR))
        .y_desc(y_desc)
        .set_all_tick_mark_size(4);
    if !x_desc.is_empty() {
        mesh.x_desc(x_desc);
    }
    mesh.draw()?;
    Ok(())
}

/// A thin frame around a plot area.
fn frame<C: plotters::coord::CoordTranslate>(plot: &DrawingArea<SVGBackend, C>) -> DrawResult {
    let area = plot.strip_coord_spec();
    let (w, h) = area.dim_in_pixel();
    area.draw(&Rectangle::new(
        [(0, 0), (w as i32 - 1, h as i32 - 1)],
        AXIS_COLOR.stroke_width(1),
    ))?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Swatch {
    /// A short thick line, for line charts.
    Line,
    /// A square, for bars.
    Square,
}

/// Legend entries laid out left to right from `x0`, wrapping before `x1`.
struct Legend<'l> {
    labels: &'l [String],
    swatch: Swatch,
    /// Position (x, row) of each entry.
    entries: Vec<(i32, u32)>,
    rows: u32,
}

impl<'l> Legend<'l> {
    const SWATCH_W: u32 = 20;

    fn new(labels: &'l [String], swatch: Swatch, x0: u32, x1: u32) -> Legend<'l> {
        let mut entries = Vec::with_capacity(labels.len());
        let (mut x, mut row) = (x0, 0);
        for label in labels {
            let w = Self::SWATCH_W + 6 + text_width(label, LABEL_PX) + 18;
            if x > x0 && x + w > x1 {
                x = x0;
                row += 1;
            }
            entries.push((x as i32, row));
            x += w;
        }
        let rows = if labels.is_empty() { 0 } else { row + 1 };
        Legend {
            labels,
            swatch,
            entries,
            rows,
        }
    }

    /// Height of the legend rows (0 without entries).
    fn height(&self) -> u32 {
        if self.rows == 0 {
            0
        } else {
            self.rows * LEGEND_ROW_H + 4
        }
    }

    fn draw(&self, area: &Root) -> DrawResult {
        for (k, (label, &(x, row))) in self.labels.iter().zip(&self.entries).enumerate() {
            let y = (row * LEGEND_ROW_H + LEGEND_ROW_H / 2) as i32;
            let w = Self::SWATCH_W as i32;
            match self.swatch {
                Swatch::Line => area.draw(&PathElement::new(
                    vec![(x, y), (x + w, y)],
                    color(k).stroke_width(3),
                ))?,
                Swatch::Square => area.draw(&Rectangle::new(
                    [(x + 4, y - 6), (x + 16, y + 6)],
                    color(k).filled(),
                ))?,
            }
            area.draw(&Text::new(
                label.clone(),
                (x + w + 6, y),
                text(LABEL_PX, TEXT_COLOR).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        Ok(())
    }
}

/// Ticks of a trading-day axis over `plot_w` pixels, where value `i` is `dates[i]`: the
/// first day of each calendar period (1, 2, 3 or 6 months, or 1, 2, 5, ... years; the
/// finest that gives at least two ticks that fit), labelled "Mar" with the year at the
/// first tick and each January ("Jan 2025"), or just "2025". Short spans get a tick every
/// k-th day (k = 1, 2 or 5 × 10^j), labelled with the full date.
fn date_ticks(dates: &[NaiveDate], plot_w: u32) -> Vec<(f64, String)> {
    let n = dates.len();
    let month = |d: &NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
    let max_months = (plot_w / 64).max(2) as usize;
    for months in [1, 2, 3, 6, 12, 24, 60, 120, 240, 600, 1200] {
        let period = |i: usize| month(&dates[i]).div_euclid(months);
        let starts: Vec<usize> = (1..n).filter(|&i| period(i) != period(i - 1)).collect();
        let max = if months < 12 {
            max_months
        } else {
            max_months * 3 / 2
        };
        if starts.len() > max {
            continue;
        }
        if starts.len() < 2 {
            break;
        }
        let mut last_year = None;
        return starts
            .into_iter()
            .map(|i| {
                let d = dates[i];
                let label = if months >= 12 {
                    d.format("%Y").to_string()
                } else if last_year != Some(d.year()) {
                    d.format("%b %Y").to_string()
                } else {
                    d.format("%b").to_string()
                };
                last_year = Some(d.year());
                (i as f64, label)
            })
            .collect();
    }
    // Every k-th day, k the smallest of 1, 2, 5, 10, 20, ... giving at most `max_days`.
    let max_days = (plot_w / 96).max(1) as usize;
    let need = n.saturating_sub(1) / max_days + 1;
    let mut k = 1_usize;
    'search: for base in (0..20).map(|e| 10_usize.saturating_pow(e)) {
        for f in [1, 2, 5] {
            k = base.saturating_mul(f);
            if k >= need {
                break 'search;
            }
        }
    }
    (0..n)
        .step_by(k)
        .map(|i| (i as f64, dates[i].format("%Y-%m-%d").to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// Data helpers

/// The runs of consecutive values as (index, value) points, split where a value is
/// missing.
fn runs(values: &[Option<f64>]) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                if let Some(run) = out.last_mut() {
                    run.push((i as f64, *v));
                }
            }
            None if out.last().is_some_and(|r| !r.is_empty()) => out.push(Vec::new()),
            None => {}
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// Drawdown `value / running max − 1` (≤ 0) of a wealth curve. Gaps stay gaps; points
/// where the running maximum is not positive have no drawdown.
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

/// The point a fraction `t` of the way from `lo` to `hi` (no overflow for extreme ends).
fn lerp(lo: f64, hi: f64, t: f64) -> f64 {
    lo * (1.0 - t) + hi * t
}

/// A data value, in percent (of `v * 100`) when `percent` is true.
fn fmt_value(v: f64, percent: bool, decimals: usize) -> String {
    if percent {
        format!("{}%", fixed(v * 100.0, decimals))
    } else {
        fixed(v, decimals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::PALETTE;
    use crate::plot::tests::{attr, points};
    use roxmltree::{Document, Node};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    fn dates(n: usize) -> Vec<NaiveDate> {
        (0..n)
            .map(|i| d(2024, 1, 1) + chrono::Days::new(i as u64))
            .collect()
    }

    /// `n` weekdays from 2024-01-02.
    fn trading_days(n: usize) -> Vec<NaiveDate> {
        (0..)
            .map(|i| d(2024, 1, 2) + chrono::Days::new(i))
            .filter(|d| d.weekday().number_from_monday() <= 5)
            .take(n)
            .collect()
    }

    fn s(label: &str, values: &[f64]) -> Series {
        Series {
            label: label.to_string(),
            values: values.to_vec(),
        }
    }

    /// plotters' color notation of palette color `i`.
    fn hex(i: usize) -> String {
        let c = PALETTE[i];
        format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
    }

    fn with_class<'a, 'i>(doc: &'a Document<'i>, class: &str) -> Vec<Node<'a, 'i>> {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .collect()
    }

    /// Checks the document shape, that nothing is NaN or infinite and that every
    /// coordinate lies in the viewBox.
    fn check(svg: &str) -> Document<'_> {
        assert!(svg.starts_with("<svg "), "{svg}");
        let doc = Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed: {e}\n{svg}"));
        let root = doc.root_element();
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
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
                && n.attribute("fill") == Some("#FFFFFF")
                && attr(&n, "width") == w
                && attr(&n, "height") == h),
            "white background"
        );
        let inside = |v: f64, max: f64| (0.0..=max).contains(&v);
        for n in doc.descendants().filter(|n| n.is_element()) {
            for a in n.attributes() {
                assert!(
                    !a.value().contains("NaN") && !a.value().contains("inf"),
                    "{}={}",
                    a.name(),
                    a.value()
                );
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
                assert!(attr(&n, "x") + attr(&n, "width") <= w);
                assert!(attr(&n, "y") + attr(&n, "height") <= h);
                assert!(attr(&n, "width") >= 0.0 && attr(&n, "height") >= 0.0);
            }
            if n.attribute("points").is_some() {
                for (x, y) in points(&n) {
                    assert!(
                        inside(x, w) && inside(y, h),
                        "point ({x}, {y}) outside viewBox"
                    );
                }
            }
        }
        doc
    }

    fn texts(doc: &Document) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(|t| t.trim().to_string()))
            .collect()
    }

    /// y of the tick label `label` left of `x` (the label's anchor is the tick).
    fn y_tick(doc: &Document, label: &str, x: f64) -> f64 {
        doc.descendants()
            .find(|n| {
                n.has_tag_name("text") && n.text().map(str::trim) == Some(label) && attr(n, "x") < x
            })
            .map(|n| attr(&n, "y"))
            .unwrap_or_else(|| panic!("no y tick {label}"))
    }

    #[test]
    fn equity_draws_one_line_per_run_of_each_series() {
        let nan = f64::NAN;
        let series = [
            s("agent", &[1.0, 1.1, 0.9, 1.2]),
            s("buy & hold", &[1.0, nan, 1.05, 1.1]),
            s("empty", &[nan, nan, nan, nan]),
        ];
        let svg = equity_drawdown("Equity", &dates(4), &series);
        let doc = check(&svg);
        let lines = with_class(&doc, "series");
        let stroke_of = |n: &Node| {
            n.attribute("stroke")
                .filter(|s| *s != "none")
                .or(n.attribute("fill"))
                .map(str::to_string)
        };
        // The agent in one piece; the second series broken by its gap into a dot and a
        // line; nothing for the empty one.
        assert_eq!(lines.len(), 3, "{svg}");
        let agent: Vec<&Node> = lines
            .iter()
            .filter(|n| stroke_of(n) == Some(hex(0)))
            .collect();
        assert_eq!(agent.len(), 1);
        assert_eq!(points(agent[0]).len(), 4);
        let second: Vec<&Node> = lines
            .iter()
            .filter(|n| stroke_of(n) == Some(hex(1)))
            .collect();
        assert_eq!(second.len(), 2);
        assert!(second.iter().any(|n| n.has_tag_name("circle")));
        // The agent's line is drawn last, on top.
        assert_eq!(stroke_of(&lines[2]), Some(hex(0)));
        // Drawdown: area for the agent, lines for both.
        let area = with_class(&doc, "drawdown-area");
        assert_eq!(area.len(), 1);
        assert_eq!(area[0].attribute("fill"), Some(hex(0).as_str()));
        assert_eq!(area[0].attribute("opacity"), Some("0.25"));
        let dd = with_class(&doc, "drawdown");
        assert!(dd.iter().any(|n| stroke_of(n) == Some(hex(0))));
        assert!(dd.iter().any(|n| stroke_of(n) == Some(hex(1))));
        let t = texts(&doc);
        assert!(t.contains(&"buy & hold".to_string()), "{t:?}");
        assert!(
            t.contains(&"2024-01-01 to 2024-01-04 (4 days)".to_string()),
            "{t:?}"
        );
        assert!(t.contains(&"2024-01-02".to_string()), "a day tick: {t:?}");
        assert!(
            t.iter().any(|l| l.ends_with('%')),
            "drawdown axis in percent"
        );
        assert!(t.contains(&"Equity".to_string()) && t.contains(&"Drawdown".to_string()));
    }

    #[test]
    fn equity_points_sit_on_their_ticks() {
        // Values 1, 2, 3 on an axis 1.0..3.0 (step 0.5): the points lie on the grid lines
        // labelled 1.0, 2.0 and 3.0, evenly spaced from the left to the right edge of the
        // plot (the date ticks of the first and last day).
        let svg = equity_drawdown("t", &dates(3), &[s("a", &[1.0, 2.0, 3.0])]);
        let doc = check(&svg);
        let line = with_class(&doc, "series");
        assert_eq!(line.len(), 1);
        let pts = points(&line[0]);
        assert_eq!(pts.len(), 3);
        assert_eq!(pts[0].1, y_tick(&doc, "1.0", pts[0].0));
        assert_eq!(pts[1].1, y_tick(&doc, "2.0", pts[0].0));
        assert_eq!(pts[2].1, y_tick(&doc, "3.0", pts[0].0));
        assert!((pts[1].0 - pts[0].0 - (pts[2].0 - pts[1].0)).abs() <= 1.0);
        let x_of = |label: &str| {
            doc.descendants()
                .find(|n| n.has_tag_name("text") && n.text().map(str::trim) == Some(label))
                .map(|n| attr(&n, "x"))
                .unwrap_or_else(|| panic!("no x tick {label}"))
        };
        assert_eq!(pts[0].0, x_of("2024-01-01"));
        assert_eq!(pts[2].0, x_of("2024-01-03"));
        // A monotone curve has no drawdown: its area is flat at the 0% line.
        let area = points(&with_class(&doc, "drawdown-area")[0]);
        let zero = y_tick(&doc, "0.0%", pts[0].0);
        assert!(area.iter().all(|p| p.1 == zero), "{area:?} vs {zero}");
    }

    #[test]
    fn equity_date_axis_ticks_month_starts() {
        let days = trading_days(270);
        let values: Vec<f64> = (0..270).map(|i| 1.0 + i as f64 * 0.001).collect();
        let svg = equity_drawdown("t", &days, &[s("a", &values)]);
        let doc = check(&svg);
        let t = texts(&doc);
        for label in ["Feb 2024", "Mar", "Dec", "Jan 2025"] {
            assert!(t.contains(&label.to_string()), "{label}: {t:?}");
        }
        let ticks = date_ticks(&days, 860);
        assert_eq!(ticks.len(), 12);
        for (i, _) in &ticks {
            let i = *i as usize;
            assert_ne!(days[i].month(), days[i - 1].month());
        }
        // A narrow axis falls back to quarters, a short span to days.
        let quarters = date_ticks(&days, 300);
        assert!(
            quarters
                .iter()
                .all(|(i, _)| days[*i as usize].month0().is_multiple_of(3))
        );
        assert_eq!(quarters[0].1, "Apr 2024");
        let short = date_ticks(&days[..12], 860);
        assert_eq!(short[0], (0.0, "2024-01-02".to_string()));
        assert!(short.len() >= 2 && short.len() <= 9, "{short:?}");
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
        let bars = with_class(&doc, "bar");
        assert_eq!(bars.len(), 2);
        let (h0, h1) = (attr(&bars[0], "height"), attr(&bars[1], "height"));
        // Counts 3 and 1 on an axis 0..3: the bars reach the "3" and "1" grid lines.
        let base = attr(&bars[0], "y") + h0;
        assert_eq!(base, attr(&bars[1], "y") + h1, "same baseline");
        let x = attr(&bars[0], "x");
        assert_eq!(base, y_tick(&doc, "0", x));
        assert_eq!(attr(&bars[0], "y"), y_tick(&doc, "3", x));
        assert_eq!(attr(&bars[1], "y"), y_tick(&doc, "1", x));
        let t = texts(&doc);
        assert!(t.contains(&"n = 4".to_string()), "{t:?}");
        assert!(t.contains(&"mean = 0.2500".to_string()), "{t:?}");
        assert!(t.contains(&"std = 0.5000".to_string()), "{t:?}");
        // Tooltips name the bins.
        let tip = |b: &Node| {
            b.children()
                .find(|n| n.has_tag_name("title"))
                .and_then(|n| n.text())
                .map(str::to_string)
        };
        assert_eq!(tip(&bars[0]).as_deref(), Some("[0.0000, 0.5000): 3"));
        assert_eq!(tip(&bars[1]).as_deref(), Some("[0.5000, 1.0000): 1"));
        // The mean line sits a quarter of the way.
        let mean = points(&with_class(&doc, "mean")[0]);
        let right = attr(&bars[1], "x") + attr(&bars[1], "width");
        let left = x - 1.0;
        assert!((mean[0].0 - (left + (right - left) * 0.25)).abs() <= 1.0);
    }

    #[test]
    fn histogram_skips_empty_bins_and_marks_zero() {
        let svg = histogram("h", &[-1.0, -1.0, 1.0], 3, true);
        let doc = check(&svg);
        assert_eq!(with_class(&doc, "bar").len(), 2);
        let zero = with_class(&doc, "zero");
        assert_eq!(zero.len(), 1);
        assert_eq!(zero[0].attribute("stroke-dasharray"), Some("4 3"));
        let t = texts(&doc);
        assert!(t.contains(&"-100%".to_string()), "{t:?}");
        // The zero marker sits on the 0% tick.
        let tick = doc
            .descendants()
            .find(|n| n.has_tag_name("text") && n.text().map(str::trim) == Some("0%"))
            .expect("0% tick");
        assert_eq!(points(&zero[0])[0].0, attr(&tick, "x"));

        let doc2 = histogram("h", &[1.0, 2.0, 3.0], 3, false);
        let doc2 = check(&doc2);
        assert_eq!(with_class(&doc2, "bar").len(), 3);
        assert!(with_class(&doc2, "zero").is_empty());
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
        let bars = with_class(&doc, "bar");
        assert_eq!(bars.len(), 5);
        assert!(
            bars.iter().any(|b| attr(b, "height") == 0.0),
            "zero-height bar present"
        );
        let zero = with_class(&doc, "zero");
        assert_eq!(zero.len(), 1);
        let zy = points(&zero[0])[0].1;
        for b in &bars {
            let (y, h) = (attr(b, "y"), attr(b, "height"));
            assert!(y == zy || y + h == zy, "bar not anchored at zero");
        }
        // Bars reach their values' grid lines: 10%, -20%, 30%.
        let x = attr(&bars[0], "x");
        let bar = |fill: usize, k: usize| {
            let b = bars
                .iter()
                .filter(|b| b.attribute("fill") == Some(hex(fill).as_str()))
                .nth(k)
                .expect("bar");
            (attr(b, "y"), attr(b, "y") + attr(b, "height"))
        };
        assert_eq!(bar(0, 0), (y_tick(&doc, "10%", x), zy));
        assert_eq!(bar(0, 1), (zy, y_tick(&doc, "-20%", x)));
        assert_eq!(bar(1, 2), (y_tick(&doc, "30%", x), zy));
        assert_eq!(zy, y_tick(&doc, "0%", x));
        // Within a group, series side by side in order; groups in category order.
        let xs: Vec<f64> = bars.iter().map(|b| attr(b, "x")).collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        let t = texts(&doc);
        assert!(t.iter().any(|l| l.ends_with('%')));
        for label in ["agent", "base", "f1", "f2", "f3"] {
            assert!(t.contains(&label.to_string()), "{label}");
        }
        assert!(
            !doc.descendants()
                .any(|n| n.attribute("transform").is_some())
        );
        let tip = bars[1]
            .children()
            .find(|n| n.has_tag_name("title"))
            .and_then(|n| n.text());
        assert_eq!(tip, Some("f1 / base: 0.0000%"));
    }

    #[test]
    fn grouped_bars_turn_crowded_labels() {
        let cats: Vec<String> = (0..12).map(|i| format!("fold {i}")).collect();
        let svg = grouped_bars("t", &cats, &[s("a", &[1.0; 12])], false);
        let doc = check(&svg);
        assert_eq!(with_class(&doc, "bar").len(), 12);
        let turned: Vec<Node> = doc
            .descendants()
            .filter(|n| {
                n.attribute("transform")
                    .is_some_and(|t| t.starts_with("rotate(270"))
            })
            .collect();
        assert_eq!(turned.len(), 12);
        assert!(
            turned
                .iter()
                .any(|n| n.text().map(str::trim) == Some("fold 11"))
        );
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
            equity_drawdown("t", &trading_days(5000), &[s("long", &[1.0; 5000])]),
        ];
        for svg in &cases {
            check(svg);
            assert!(!svg.contains("could not be drawn"), "{svg}");
        }
        // Nothing finite: axes plus a "no data" note.
        for (k, svg) in cases.iter().enumerate() {
            let none = [0, 1, 2, 5, 7, 8, 13, 14, 15, 17].contains(&k);
            let doc = check(svg);
            assert_eq!(
                texts(&doc).contains(&"no data".to_string()),
                none,
                "case {k}"
            );
        }
        // A single point still yields a series element (a dot).
        assert_eq!(with_class(&check(&cases[3]), "series").len(), 1);
        assert_eq!(with_class(&check(&cases[9]), "bar").len(), 1);
        assert_eq!(with_class(&check(&cases[10]), "bar").len(), 1);
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
    fn palette_cycles_and_legends_wrap() {
        assert_eq!(color(0), RGBColor(0x1f, 0x77, 0xb4));
        assert_eq!(color(PALETTE.len()), color(0));
        assert_ne!(color(1), color(0));
        let labels: Vec<String> = (0..12).map(|i| format!("baseline number {i}")).collect();
        let series: Vec<Series> = labels.iter().map(|l| s(l, &[1.0, 1.1])).collect();
        let svg = equity_drawdown("t", &dates(2), &series);
        let doc = check(&svg);
        // Every label once, on several rows; the 9th series reuses the first color.
        let t = texts(&doc);
        assert!(labels.iter().all(|l| t.contains(l)));
        let legend_ys: std::collections::BTreeSet<i64> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text") && n.text().is_some_and(|t| t.contains("baseline")))
            .map(|n| attr(&n, "y") as i64)
            .collect();
        assert!(legend_ys.len() >= 3, "{legend_ys:?}");
        let agent_colored = with_class(&doc, "series")
            .iter()
            .filter(|n| n.attribute("stroke") == Some(hex(0).as_str()))
            .count();
        assert_eq!(agent_colored, 2);
    }
}
