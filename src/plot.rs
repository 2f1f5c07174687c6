//! Training curves as SVG: `sim-train plot --run-dir DIR` reads `metrics.jsonl` and draws
//! one panel per metric against environment steps, in a single self-contained file that
//! any browser opens (no plotting library, no fonts to ship).

use crate::error::{Error, IoContext, Result};
use std::fmt::Write as _;
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

const COLS: usize = 3;
const W: f64 = 360.0;
const H: f64 = 220.0;
const PAD_L: f64 = 58.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 26.0;
const PAD_B: f64 = 30.0;

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
    crate::cache::catalog::write_atomic(&file, svg.as_bytes())?;
    Ok(vec![file])
}

/// The SVG document of a grid of panels.
pub fn render(curves: &[Curve], title: &str) -> String {
    let rows = curves.len().div_ceil(COLS);
    let (width, height) = (W * COLS as f64, H * rows as f64 + 30.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-size="14">{}</text>"#,
        escape(title)
    );
    for (k, (name, pts)) in curves.iter().enumerate() {
        let (ox, oy) = ((k % COLS) as f64 * W, 30.0 + (k / COLS) as f64 * H);
        panel(&mut s, ox, oy, name, pts);
    }
    s.push_str("</svg>\n");
    s
}

fn panel(s: &mut String, ox: f64, oy: f64, name: &str, pts: &[(f64, f64)]) {
    let (x0, y0, pw, ph) = (ox + PAD_L, oy + PAD_T, W - PAD_L - PAD_R, H - PAD_T - PAD_B);
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" font-size="12">{}</text><rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##,
        x0,
        oy + 16.0,
        escape(name)
    );
    if pts.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" fill="#999">no data</text>"##,
            x0 + 8.0,
            y0 + 18.0
        );
        return;
    }
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    if xmax <= xmin {
        xmax = xmin + 1.0;
    }
    if ymax <= ymin {
        let pad = if ymin == 0.0 { 1.0 } else { ymin.abs() * 0.05 };
        ymin -= pad;
        ymax += pad;
    }
    let px = |x: f64| x0 + (x - xmin) / (xmax - xmin) * pw;
    let py = |y: f64| y0 + ph - (y - ymin) / (ymax - ymin) * ph;
    for (v, label) in [(ymin, ymin), (ymax, ymax)] {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#555">{}</text>"##,
            x0 - 4.0,
            py(v) + 4.0,
            tick(label)
        );
    }
    for (v, anchor) in [(xmin, "start"), (xmax, "end")] {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="{anchor}" fill="#555">{}</text>"##,
            px(v),
            y0 + ph + 14.0,
            tick(v)
        );
    }
    let mut d = String::new();
    for (i, &(x, y)) in pts.iter().enumerate() {
        let _ = write!(
            d,
            "{}{:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            px(x),
            py(y)
        );
    }
    let _ = write!(
        s,
        r##"<path d="{d}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>"##
    );
}

fn tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
