//! Line charts of the mesh benchmarks, as PNG (plotters' bitmap backend) and SVG.
//!
//! Text is laid out with ab_glyph from a TrueType file read at run time (DejaVu Sans, which
//! the development and CI machines have; `$BEEMESH_BENCH_FONT` names another), so no
//! fontconfig or system font library is linked. Without a font no chart is drawn and the
//! caller says so; the figures are still printed as tables.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Where a sans-serif TrueType font is looked for, in order.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// One line of a chart.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Mark every point (few points, e.g. one per mesh size).
    pub markers: bool,
    pub dashed: bool,
}

/// A chart with linear axes.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: &'a [Series],
    /// Axis ranges; `None` fits the data.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    pub legend_at: SeriesLabelPosition,
    /// Decimals of the tick labels.
    pub x_decimals: usize,
    pub y_decimals: usize,
}

/// Registers the font once; the error says where it was looked for.
fn ensure_font() -> anyhow::Result<()> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("BEEMESH_BENCH_FONT") {
            candidates.push(PathBuf::from(p));
        }
        candidates.extend(FONT_CANDIDATES.iter().map(PathBuf::from));
        for path in &candidates {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return Ok(());
            }
        }
        Err(format!(
            "no usable TrueType font (set BEEMESH_BENCH_FONT; looked in {})",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// Writes `<base>.png` and `<base>.svg` and returns their paths.
pub fn draw(chart: &Chart, base: &Path) -> anyhow::Result<Vec<PathBuf>> {
    ensure_font()?;
    if let Some(dir) = base.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let png = base.with_extension("png");
    let svg = base.with_extension("svg");
    render(
        BitMapBackend::new(&png, (1100, 700)).into_drawing_area(),
        chart,
    )
    .map_err(|e| anyhow!("{e}"))
    .with_context(|| format!("drawing {}", png.display()))?;
    render(
        SVGBackend::new(&svg, (1100, 700)).into_drawing_area(),
        chart,
    )
    .map_err(|e| anyhow!("{e}"))
    .with_context(|| format!("drawing {}", svg.display()))?;
    Ok(vec![png, svg])
}

fn fit(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (if from_zero && lo >= 0.0 { lo } else { lo - pad }, hi + pad)
}

fn render<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    chart: &Chart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = chart
        .x_range
        .unwrap_or_else(|| fit(points().map(|p| p.0), false));
    let (y0, y1) = chart
        .y_range
        .unwrap_or_else(|| fit(points().map(|p| p.1), true));
    let mut ctx = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 24))
        .margin(18)
        .x_label_area_size(56)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    ctx.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .label_style(("sans-serif", 17))
        .axis_desc_style(("sans-serif", 19))
        .light_line_style(RGBColor(235, 235, 235))
        .x_label_formatter(&|v| format!("{v:.*}", chart.x_decimals))
        .y_label_formatter(&|v| format!("{v:.*}", chart.y_decimals))
        .draw()?;
    for (i, series) in chart.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = color.stroke_width(if series.dashed { 1 } else { 3 });
        let inside = series
            .points
            .iter()
            .copied()
            .filter(|&(x, y)| (x0..=x1).contains(&x) && y.is_finite());
        let drawn = if series.dashed {
            ctx.draw_series(DashedLineSeries::new(inside, 10, 6, style))?
        } else {
            ctx.draw_series(LineSeries::new(inside, style))?
        };
        drawn.label(series.label.as_str()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
        });
        if series.markers {
            ctx.draw_series(
                series
                    .points
                    .iter()
                    .filter(|&&(x, y)| (x0..=x1).contains(&x) && y.is_finite())
                    .map(|&p| Circle::new(p, 5, color.filled())),
            )?;
        }
    }
    ctx.configure_series_labels()
        .position(chart.legend_at.clone())
        .label_font(("sans-serif", 17))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_png_and_svg_with_text() {
        if ensure_font().is_err() {
            eprintln!("no TrueType font on this machine: chart drawing not exercised");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let series = [Series {
            label: "p99".into(),
            points: vec![(100.0, 10.0), (1000.0, 90.0)],
            markers: true,
            dashed: false,
        }];
        let files = draw(
            &Chart {
                title: "test chart",
                x_label: "nodes",
                y_label: "ms",
                series: &series,
                x_range: None,
                y_range: None,
                legend_at: SeriesLabelPosition::UpperLeft,
                x_decimals: 0,
                y_decimals: 0,
            },
            &dir.path().join("chart"),
        )
        .unwrap();
        let png = std::fs::read(&files[0]).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        assert!(svg.contains("test chart") && svg.contains("nodes"));
    }

    #[test]
    fn fitted_ranges_pad_the_data_and_start_latencies_at_zero() {
        let (lo, hi) = fit([3.0, 7.0].into_iter(), true);
        assert_eq!(lo, 0.0);
        assert!(hi > 7.0);
        let (lo, _) = fit([-2.0, 5.0].into_iter(), true);
        assert!(lo < -2.0);
        assert_eq!(fit(std::iter::empty(), false), (0.0, 1.0));
    }
}
