//! What the side-by-side benchmarks leave behind: a summary table printed on the
//! terminal, the same table as Markdown, and SVG line plots, written into a results
//! folder (`bench-results/` by default, git-ignored) under one name per run.
//!
//! Tables and plots are plain data in, text out: the terminal table, the Markdown and
//! the SVG are unit-tested. The SVG is drawn by `plotters` with its SVG backend only; the
//! text is left to the browser's fonts, so no font library is needed at build time.
//! `Machine` reads what BENCHMARKS.md records about the computer a run used.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use plotters::prelude::*;

/// The folder the benchmarks write their Markdown and SVG into unless told otherwise.
pub const DEFAULT_RESULTS_DIR: &str = "bench-results";

/// A table with a header row; every row is as wide as the header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|header| header.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row, padded with `-` or cut to the header's width.
    pub fn push(&mut self, mut row: Vec<String>) {
        row.resize(self.headers.len(), "-".to_string());
        self.rows.push(row);
    }

    /// Aligned columns for a terminal: the first column to the left, the others to the
    /// right, two spaces apart.
    pub fn text(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|column| {
                std::iter::once(&self.headers)
                    .chain(&self.rows)
                    .map(|row| row[column].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |row: &[String]| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(column, (cell, width))| match column {
                    0 => format!("{cell:<width$}"),
                    _ => format!("{cell:>width$}"),
                })
                .collect();
            cells.join("  ").trim_end().to_string()
        };
        let mut text = line(&self.headers);
        text.push('\n');
        for row in &self.rows {
            text.push_str(&line(row));
            text.push('\n');
        }
        text
    }

    /// A GitHub Markdown table, numbers (every column but the first) right-aligned.
    pub fn markdown(&self) -> String {
        let escape = |cell: &String| cell.replace('|', "\\|");
        let mut text = format!(
            "| {} |\n",
            self.headers
                .iter()
                .map(escape)
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let rule: Vec<&str> = (0..self.headers.len())
            .map(|column| if column == 0 { "---" } else { "---:" })
            .collect();
        let _ = writeln!(text, "|{}|", rule.join("|"));
        for row in &self.rows {
            let _ = writeln!(
                text,
                "| {} |",
                row.iter().map(escape).collect::<Vec<_>>().join(" | ")
            );
        }
        text
    }
}

/// One line of a plot: named points, drawn in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line plot with one or more series.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// A logarithmic x axis (connection counts 1, 16, 64, 256 spread evenly).
    pub log_x: bool,
    pub series: Vec<Series>,
}

const PALETTE: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

impl Plot {
    /// The plot as an SVG document, 800×480.
    pub fn svg(&self) -> anyhow::Result<String> {
        let points = || self.series.iter().flat_map(|series| &series.points);
        let finite = |value: &f64| value.is_finite();
        let x_values: Vec<f64> = points().map(|point| point.0).filter(finite).collect();
        let y_values: Vec<f64> = points().map(|point| point.1).filter(finite).collect();
        let x_min = x_values.iter().copied().fold(f64::INFINITY, f64::min);
        let x_max = x_values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let y_max = y_values.iter().copied().fold(0.0, f64::max);
        let (x_min, x_max) = match (x_min.is_finite(), x_min < x_max) {
            (false, _) => (1.0, 2.0),
            (true, false) => (x_min * 0.5, x_max * 2.0 + 1.0),
            (true, true) => (x_min, x_max),
        };
        let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (800, 480)).into_drawing_area();
            root.fill(&WHITE).map_err(plot_error)?;
            if self.log_x {
                let x_range = (x_min.max(f64::MIN_POSITIVE) * 0.8..x_max * 1.25).log_scale();
                let chart = ChartBuilder::on(&root)
                    .caption(&self.title, ("sans-serif", 22))
                    .margin(16)
                    .x_label_area_size(44)
                    .y_label_area_size(64)
                    .build_cartesian_2d(x_range, 0.0..y_max)
                    .map_err(plot_error)?;
                self.draw_series(chart)?;
            } else {
                let span = (x_max - x_min) * 0.05;
                let chart = ChartBuilder::on(&root)
                    .caption(&self.title, ("sans-serif", 22))
                    .margin(16)
                    .x_label_area_size(44)
                    .y_label_area_size(64)
                    .build_cartesian_2d(x_min - span..x_max + span, 0.0..y_max)
                    .map_err(plot_error)?;
                self.draw_series(chart)?;
            }
            root.present().map_err(plot_error)?;
        }
        Ok(svg)
    }

    fn draw_series<'a, X>(
        &self,
        mut chart: ChartContext<
            'a,
            SVGBackend<'a>,
            Cartesian2d<X, plotters::coord::types::RangedCoordf64>,
        >,
    ) -> anyhow::Result<()>
    where
        X: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
    {
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&|x| short_number(*x))
            .y_label_formatter(&|y| short_number(*y))
            .draw()
            .map_err(plot_error)?;
        for (index, series) in self.series.iter().enumerate() {
            let color = PALETTE[index % PALETTE.len()];
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(plot_error)?
                .label(series.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|point| Circle::new(point, 4, color.filled())),
                )
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(plot_error)?;
        Ok(())
    }
}

fn plot_error(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("cannot draw the plot: {error}")
}

/// An axis label: 1, 16, 2.5k, 0.4.
fn short_number(value: f64) -> String {
    if value.abs() >= 10_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value.abs() >= 1000.0 {
        format!("{:.1}k", value / 1000.0)
    } else if value.fract() == 0.0 || value.abs() >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// The computer a run used, as BENCHMARKS.md records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// The 1-minute load average when the run started.
    pub load_average: String,
}

impl Machine {
    /// Reads `/proc`; what cannot be read is `unknown`.
    pub fn here() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpus = std::thread::available_parallelism().map_or(0, usize::from);
        Machine {
            cpus,
            cpu_model: cpu_model(&read("/proc/cpuinfo")).unwrap_or_else(|| "unknown".to_string()),
            kernel: first_word(&read("/proc/sys/kernel/osrelease")),
            load_average: first_word(&read("/proc/loadavg")),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} CPUs (nproc), {}, Linux {}, load average {} at the start",
            self.cpus, self.cpu_model, self.kernel, self.load_average
        )
    }
}

fn first_word(text: &str) -> String {
    text.split_whitespace()
        .next()
        .unwrap_or("unknown")
        .to_string()
}

/// The first `model name` in the text of /proc/cpuinfo.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == "model name").then(|| value.trim().to_string())
    })
}

/// Writes `{stem}.md` and `{stem}-{plot name}.svg` for each plot into `directory`
/// (created if missing); returns the paths written.
pub fn write_results(
    directory: &Path,
    stem: &str,
    markdown: &str,
    plots: &[(&str, &Plot)],
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    let mut written = Vec::new();
    let page = directory.join(format!("{stem}.md"));
    std::fs::write(&page, markdown).with_context(|| format!("cannot write {}", page.display()))?;
    written.push(page);
    for (name, plot) in plots {
        let path = directory.join(format!("{stem}-{name}.svg"));
        std::fs::write(&path, plot.svg()?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// A UTC timestamp for file names: `20261122-0903`.
pub fn stamp(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Howard Hinnant's days-to-civil: the Gregorian date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut table = Table::new(&["system", "bids/s", "p99 ms"]);
        table.push(vec!["gavel".into(), "1200".into(), "3.4".into()]);
        table.push(vec!["etcd | v3".into(), "80".into()]);
        table
    }

    #[test]
    fn terminal_table_aligns_columns_and_pads_short_rows() {
        let text = table().text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "system     bids/s  p99 ms");
        assert_eq!(lines[1], "gavel        1200     3.4");
        assert_eq!(lines[2], "etcd | v3      80       -");
    }

    #[test]
    fn markdown_table_right_aligns_numbers_and_escapes_pipes() {
        let markdown = table().markdown();
        let lines: Vec<&str> = markdown.lines().collect();
        assert_eq!(lines[0], "| system | bids/s | p99 ms |");
        assert_eq!(lines[1], "|---|---:|---:|");
        assert_eq!(lines[3], "| etcd \\| v3 | 80 | - |");
    }

    #[test]
    fn svg_plot_names_its_title_axes_and_series() {
        let plot = Plot {
            title: "Bids per second".into(),
            x_label: "connections".into(),
            y_label: "bids/s".into(),
            log_x: true,
            series: vec![
                Series {
                    name: "Gavel".into(),
                    points: vec![(1.0, 100.0), (16.0, 900.0), (64.0, 1500.0)],
                },
                Series {
                    name: "etcd".into(),
                    points: vec![(1.0, 80.0), (16.0, f64::NAN)],
                },
            ],
        };
        let svg = plot.svg().expect("a plot of finite points draws");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        for text in ["Bids per second", "connections", "bids/s", "Gavel", "etcd"] {
            assert!(svg.contains(text), "the SVG lacks {text}");
        }
        assert!(svg.contains("<polyline") || svg.contains("<path"));
    }

    #[test]
    fn an_empty_plot_still_draws_its_axes() {
        let plot = Plot {
            title: "nothing yet".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: false,
            series: vec![],
        };
        assert!(plot.svg().expect("empty plot").contains("nothing yet"));
    }

    #[test]
    fn cpu_model_is_the_first_model_name() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(cpu_model("processor: 0\n"), None);
    }

    #[test]
    fn stamps_are_utc_calendar_times() {
        assert_eq!(stamp(0), "19700101-000000");
        // 2026-11-22 09:03:07 UTC.
        assert_eq!(stamp(1_795_338_187_000), "20261122-090307");
        // A leap day.
        assert_eq!(stamp(951_782_400_000), "20000229-000000");
    }

    #[test]
    fn short_numbers_for_axis_labels() {
        assert_eq!(short_number(16.0), "16");
        assert_eq!(short_number(2500.0), "2.5k");
        assert_eq!(short_number(25_000.0), "25k");
        assert_eq!(short_number(0.4), "0.40");
    }
}
