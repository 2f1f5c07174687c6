//! Self-contained HTML page for the walk-forward evaluation report.
//!
//! [`page`] assembles a single HTML document from a list of [`Block`]s:
//! headings, paragraphs, inline SVG charts and tables. The page carries its
//! own inline stylesheet and references no external resources (no scripts,
//! stylesheets, fonts or images by URL), so `report.html` opens offline.
//! All text is HTML-escaped; SVG blocks are inlined verbatim (minus a
//! leading XML declaration) and must therefore be trusted, well-formed SVG,
//! such as the output of the sibling `charts` module.

use crate::util::text::escape_html as escape;
use std::fmt::{self, Write};

/// A block of the page.
pub enum Block {
    /// Section heading, rendered as `<h2>`.
    Heading(String),
    /// Plain text paragraph; escaped.
    Paragraph(String),
    /// An SVG document, inlined as-is (a leading XML declaration is stripped).
    Svg(String),
    /// A table with a caption, column headers and rows of cells. Rows shorter
    /// than the header are padded with empty cells.
    Table {
        caption: String,
        columns: Vec<String>,
        rows: Vec<Vec<Cell>>,
    },
}

/// One table cell.
pub enum Cell {
    /// Plain text; escaped.
    Text(String),
    /// A number with the given decimals, right-aligned; "–" when not finite.
    Num(f64, usize),
    /// A fraction shown as percent (`x * 100` with the given decimals and a
    /// "%" sign), right-aligned; "–" when not finite.
    Pct(f64, usize),
    /// "PASS" (green) or "FAIL" (red).
    Pass(bool),
}

/// Shown for non-finite numbers.
const MISSING: &str = "–";

const STYLE: &str = "\
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; color: #222; \
background: #fafafa; max-width: 1100px; margin: 2rem auto; padding: 0 1.5rem; line-height: 1.5; }
h1 { font-size: 1.7rem; border-bottom: 2px solid #1f77b4; padding-bottom: 0.3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; color: #1f3b57; }
p { margin: 0.6rem 0; }
figure.chart { margin: 1rem 0; background: #fff; border: 1px solid #ddd; padding: 0.5rem; overflow-x: auto; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
div.table { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; background: #fff; font-size: 0.92rem; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0.3rem 0; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.7rem; }
th { background: #eef2f6; text-align: left; }
tbody tr:nth-child(even) { background: #f5f7f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.pass, td.fail { text-align: center; font-weight: 700; }
td.pass { color: #1a7f37; background: #e6f4ea; }
td.fail { color: #c62828; background: #fdecea; }
";

/// Renders the whole page: doctype, UTF-8 charset, title, inline style and
/// the blocks in order, below an `<h1>` with the title.
pub fn page(title: &str, blocks: &[Block]) -> String {
    let mut out = String::new();
    let t = escape(title);
    put(
        &mut out,
        format_args!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{t}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n"
        ),
    );
    for block in blocks {
        match block {
            Block::Heading(text) => put(&mut out, format_args!("<h2>{}</h2>\n", escape(text))),
            Block::Paragraph(text) => put(&mut out, format_args!("<p>{}</p>\n", escape(text))),
            Block::Svg(svg) => put(
                &mut out,
                format_args!(
                    "<figure class=\"chart\">\n{}\n</figure>\n",
                    strip_xml_declaration(svg).trim_end()
                ),
            ),
            Block::Table {
                caption,
                columns,
                rows,
            } => table(&mut out, caption, columns, rows),
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Appends formatted text. Writing to a `String` cannot fail.
fn put(out: &mut String, args: fmt::Arguments) {
    let _ = out.write_fmt(args);
}

/// Removes a leading `<?xml ...?>` declaration (and surrounding whitespace or
/// byte-order mark) from an SVG document.
fn strip_xml_declaration(svg: &str) -> &str {
    let s = svg.trim_start_matches('\u{FEFF}').trim_start();
    match s.strip_prefix("<?xml") {
        Some(rest) => rest
            .find("?>")
            .map_or(s, |end| rest[end + 2..].trim_start()),
        None => s,
    }
}

fn table(out: &mut String, caption: &str, columns: &[String], rows: &[Vec<Cell>]) {
    put(
        out,
        format_args!(
            "<div class=\"table\">\n<table>\n<caption>{}</caption>\n<thead><tr>",
            escape(caption)
        ),
    );
    for c in columns {
        put(out, format_args!("<th>{}</th>", escape(c)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            match cell {
                Cell::Text(t) => put(out, format_args!("<td>{}</td>", escape(t))),
                Cell::Num(v, d) => put(
                    out,
                    format_args!("<td class=\"num\">{}</td>", fmt_num(*v, *d)),
                ),
                Cell::Pct(v, d) => {
                    let text = if v.is_finite() {
                        format!("{}%", fmt_num(v * 100.0, *d))
                    } else {
                        MISSING.to_string()
                    };
                    put(out, format_args!("<td class=\"num\">{text}</td>"))
                }
                Cell::Pass(true) => out.push_str("<td class=\"pass\">PASS</td>"),
                Cell::Pass(false) => out.push_str("<td class=\"fail\">FAIL</td>"),
            }
        }
        for _ in row.len()..columns.len() {
            out.push_str("<td></td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

/// Fixed-decimals number; "–" when not finite; no negative zero ("-0.00").
fn fmt_num(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return MISSING.to_string();
    }
    let s = format!("{v:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
        <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\" viewBox=\"0 0 10 10\">\
        <title>c</title><rect x=\"0\" y=\"0\" width=\"10\" height=\"10\" fill=\"#ffffff\"/></svg>\n";

    fn sample() -> Vec<Block> {
        vec![
            Block::Heading("Results <fold 1>".into()),
            Block::Paragraph("Agent & baselines, \"net\" of costs; it's fine".into()),
            Block::Svg(SVG.into()),
            Block::Table {
                caption: "Metrics <all>".into(),
                columns: vec![
                    "name".into(),
                    "sharpe".into(),
                    "return".into(),
                    "gate".into(),
                ],
                rows: vec![
                    vec![
                        Cell::Text("<script>alert(1)</script>".into()),
                        Cell::Num(1.23456, 2),
                        Cell::Pct(0.1234, 1),
                        Cell::Pass(true),
                    ],
                    vec![
                        Cell::Text("b&h".into()),
                        Cell::Num(f64::NAN, 2),
                        Cell::Pct(f64::INFINITY, 1),
                        Cell::Pass(false),
                    ],
                    vec![Cell::Num(-0.0001, 2)],
                ],
            },
        ]
    }

    #[test]
    fn page_structure() {
        let html = page("Report <1> & \"x\"", &sample());
        assert!(html.starts_with("<!DOCTYPE html>\n"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("<title>Report &lt;1&gt; &amp; &quot;x&quot;</title>"));
        assert!(html.contains("<h1>Report &lt;1&gt; &amp; &quot;x&quot;</h1>"));
        assert!(html.contains("<style>") && html.contains("nth-child(even)"));
        assert!(html.contains("<h2>Results &lt;fold 1&gt;</h2>"));
        assert!(
            html.contains("<p>Agent &amp; baselines, &quot;net&quot; of costs; it&#39;s fine</p>")
        );
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn svg_is_inlined_without_xml_declaration() {
        let html = page("t", &sample());
        assert!(!html.contains("<?xml"));
        assert!(html.contains(
            "<figure class=\"chart\">\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\""
        ));
        assert_eq!(strip_xml_declaration("  <svg/>"), "<svg/>");
        assert_eq!(strip_xml_declaration("<?xml broken"), "<?xml broken");
    }

    #[test]
    fn table_cells() {
        let html = page("t", &sample());
        assert!(html.contains("<caption>Metrics &lt;all&gt;</caption>"));
        assert!(html.contains("<th>sharpe</th>"));
        assert!(html.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
        assert!(!html.contains("<script"));
        assert!(html.contains("<td class=\"num\">1.23</td>"));
        assert!(html.contains("<td class=\"num\">12.3%</td>"));
        assert!(html.contains("<td class=\"pass\">PASS</td>"));
        assert!(html.contains("<td class=\"fail\">FAIL</td>"));
        assert!(html.contains("<td>b&amp;h</td>"));
        assert_eq!(html.matches("<td class=\"num\">–</td>").count(), 2);
        // Short row: negative zero normalised, padded to four cells.
        assert!(html.contains("<tr><td class=\"num\">0.00</td><td></td><td></td><td></td></tr>"));
    }

    #[test]
    fn number_formatting() {
        assert_eq!(fmt_num(2.0, 0), "2");
        assert_eq!(fmt_num(-1.005, 1), "-1.0");
        assert_eq!(fmt_num(f64::NEG_INFINITY, 3), "–");
        assert_eq!(fmt_num(-0.0, 2), "0.00");
    }

    #[test]
    fn no_external_resources() {
        let html = page("t", &sample());
        let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
        for needle in [
            "<script", "<link", "<img", "<iframe", "url(", "@import", "src=",
        ] {
            assert!(!without_ns.contains(needle), "found {needle}");
        }
    }

    #[test]
    fn page_is_deterministic() {
        assert_eq!(page("t", &sample()), page("t", &sample()));
        assert_ne!(page("t", &sample()), page("u", &sample()));
    }
}
