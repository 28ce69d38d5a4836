//! What `gavel bench bids` reports, from its measurements: a row per system and
//! connection count (writes per second, p50/p99/p999), Gavel/etcd ratios per connection
//! count, the goals checked (at 64 connections at least twice etcd's throughput with a
//! p99 no worse; at one connection a p50 no worse than etcd's; that p50 within twice
//! the floor), the Markdown page and the plots. Plain data in, text out.

use std::fmt::Write as _;

use super::closed_loop::{quantile, LevelOutcome};
use super::floor::Floor;
use super::results::{Plot, Series, Table};

/// One system at one connection count.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelFigures {
    pub system: &'static str,
    pub connections: usize,
    pub per_second: f64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub p999_us: Option<u64>,
    pub acknowledged: usize,
    pub refused: u64,
    pub failed: u64,
    pub capped: bool,
    pub first_problem: Option<String>,
}

impl LevelFigures {
    pub fn of(system: &'static str, outcome: &LevelOutcome) -> LevelFigures {
        let latencies = &outcome.latencies_us;
        LevelFigures {
            system,
            connections: outcome.connections,
            per_second: outcome.per_second(),
            p50_us: quantile(latencies, 0.5),
            p99_us: quantile(latencies, 0.99),
            p999_us: quantile(latencies, 0.999),
            acknowledged: latencies.len(),
            refused: outcome.refused,
            failed: outcome.failed,
            capped: outcome.capped,
            first_problem: outcome.first_problem.clone(),
        }
    }
}

pub const GAVEL: &str = "Gavel";
pub const ETCD: &str = "etcd";

/// Gavel beside etcd at one connection count; ratios are Gavel/etcd.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    pub connections: usize,
    pub throughput: Option<f64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

fn divide(gavel: Option<f64>, etcd: Option<f64>) -> Option<f64> {
    match (gavel, etcd) {
        (Some(gavel), Some(etcd)) if etcd > 0.0 => Some(gavel / etcd),
        _ => None,
    }
}

/// A ratio per connection count measured on both systems.
pub fn ratios(levels: &[LevelFigures]) -> Vec<Ratio> {
    let mut connections: Vec<usize> = levels.iter().map(|level| level.connections).collect();
    connections.sort_unstable();
    connections.dedup();
    connections
        .into_iter()
        .filter_map(|count| {
            let find = |system| {
                levels
                    .iter()
                    .find(|level| level.system == system && level.connections == count)
            };
            let (gavel, etcd) = (find(GAVEL)?, find(ETCD)?);
            let as_f64 = |value: Option<u64>| value.map(|value| value as f64);
            Some(Ratio {
                connections: count,
                throughput: divide(Some(gavel.per_second), Some(etcd.per_second)),
                p50: divide(as_f64(gavel.p50_us), as_f64(etcd.p50_us)),
                p99: divide(as_f64(gavel.p99_us), as_f64(etcd.p99_us)),
            })
        })
        .collect()
}

/// A goal and whether the run met it (`None`: not measured).
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    pub name: String,
    pub met: Option<bool>,
    pub measured: String,
}

fn ratio_text(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |value| format!("{value:.2}×"))
}

/// The three goals of the issue.
pub fn goals(ratios: &[Ratio], floor: Option<&Floor>, levels: &[LevelFigures]) -> Vec<Goal> {
    let at = |count| ratios.iter().find(|ratio| ratio.connections == count);
    let sixty_four = at(64);
    let throughput = sixty_four.and_then(|ratio| ratio.throughput);
    let p99 = sixty_four.and_then(|ratio| ratio.p99);
    let single_p50 = at(1).and_then(|ratio| ratio.p50);
    let gavel_single_p50 = levels
        .iter()
        .find(|level| level.system == GAVEL && level.connections == 1)
        .and_then(|level| level.p50_us);
    let distance = floor
        .zip(gavel_single_p50)
        .and_then(|(floor, p50)| floor.distance(p50));
    vec![
        Goal {
            name: "64 connections: Gavel ≥ 2× etcd's bids/s, with a p99 no worse".to_string(),
            met: throughput
                .zip(p99)
                .map(|(throughput, p99)| throughput >= 2.0 && p99 <= 1.0),
            measured: format!(
                "throughput {}, p99 {}",
                ratio_text(throughput),
                ratio_text(p99)
            ),
        },
        Goal {
            name: "1 connection: Gavel's p50 no worse than etcd's".to_string(),
            met: single_p50.map(|p50| p50 <= 1.0),
            measured: format!("p50 {}", ratio_text(single_p50)),
        },
        Goal {
            name: "1 connection: Gavel's p50 within 2× the floor".to_string(),
            met: distance.map(|distance| distance <= 2.0),
            measured: format!("{} the floor", ratio_text(distance)),
        },
    ]
}

fn millis(value: Option<u64>) -> String {
    value.map_or_else(
        || "-".to_string(),
        |us| format!("{:.2}", us as f64 / 1000.0),
    )
}

/// A row per system and connection count.
pub fn levels_table(levels: &[LevelFigures]) -> Table {
    let mut table = Table::new(&[
        "system",
        "connections",
        "bids/s",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "acknowledged",
        "refused",
        "errors",
    ]);
    for level in levels {
        let capped = if level.capped { " (capped)" } else { "" };
        table.push(vec![
            level.system.to_string(),
            level.connections.to_string(),
            format!("{:.0}{capped}", level.per_second),
            millis(level.p50_us),
            millis(level.p99_us),
            millis(level.p999_us),
            level.acknowledged.to_string(),
            level.refused.to_string(),
            level.failed.to_string(),
        ]);
    }
    table
}

/// Gavel/etcd per connection count.
pub fn ratios_table(ratios: &[Ratio]) -> Table {
    let mut table = Table::new(&[
        "connections",
        "bids/s Gavel/etcd",
        "p50 Gavel/etcd",
        "p99 Gavel/etcd",
    ]);
    for ratio in ratios {
        table.push(vec![
            ratio.connections.to_string(),
            ratio_text(ratio.throughput),
            ratio_text(ratio.p50),
            ratio_text(ratio.p99),
        ]);
    }
    table
}

/// The floor and the single-connection p50's distance from it.
pub fn floor_table(floor: &Floor, gavel_single_p50_us: Option<u64>) -> Table {
    let mut table = Table::new(&[
        "fdatasync p50 ms",
        "loopback round trip p50 ms",
        "floor (2 syncs + 2 round trips) ms",
        "Gavel 1-connection p50 ms",
        "distance",
    ]);
    table.push(vec![
        millis(Some(floor.fdatasync_us)),
        format!("{:.3}", floor.round_trip_us as f64 / 1000.0),
        millis(Some(floor.write_floor_us())),
        millis(gavel_single_p50_us),
        ratio_text(gavel_single_p50_us.and_then(|p50| floor.distance(p50))),
    ]);
    table
}

/// The goals as lines: `met`, `NOT met` or `not measured`.
pub fn goals_text(goals: &[Goal]) -> String {
    let mut text = String::new();
    for goal in goals {
        let verdict = match goal.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        };
        let _ = writeln!(text, "- {}: {verdict} ({})", goal.name, goal.measured);
    }
    text
}

/// Problems seen per level (first refusal or error), one line each.
pub fn problems_text(levels: &[LevelFigures]) -> String {
    let mut text = String::new();
    for level in levels {
        if let Some(problem) = &level.first_problem {
            let _ = writeln!(
                text,
                "{} at {} connections: {} refused, {} errors; the first: {problem}",
                level.system, level.connections, level.refused, level.failed
            );
        }
    }
    text
}

/// bids/s, p50 and p99 against the connection count, a line per system.
pub fn plots(levels: &[LevelFigures]) -> Vec<(&'static str, Plot)> {
    let systems: Vec<&'static str> = [GAVEL, ETCD]
        .into_iter()
        .filter(|system| levels.iter().any(|level| level.system == *system))
        .collect();
    let plot = |title: &str, y_label: &str, value: &dyn Fn(&LevelFigures) -> Option<f64>| Plot {
        title: title.to_string(),
        x_label: "concurrent connections".to_string(),
        y_label: y_label.to_string(),
        log_x: true,
        series: systems
            .iter()
            .map(|system| Series {
                name: system.to_string(),
                points: levels
                    .iter()
                    .filter(|level| level.system == *system)
                    .filter_map(|level| Some((level.connections as f64, value(level)?)))
                    .collect(),
            })
            .collect(),
    };
    let ms = |value: Option<u64>| value.map(|us| us as f64 / 1000.0);
    vec![
        (
            "throughput",
            plot("Acknowledged writes per second", "bids/s", &|level| {
                Some(level.per_second)
            }),
        ),
        (
            "p50",
            plot("Median latency", "p50 ms", &|level| ms(level.p50_us)),
        ),
        (
            "p99",
            plot("99th percentile latency", "p99 ms", &|level| {
                ms(level.p99_us)
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(
        system: &'static str,
        connections: usize,
        per_second: f64,
        p50_us: u64,
        p99_us: u64,
    ) -> LevelFigures {
        LevelFigures {
            system,
            connections,
            per_second,
            p50_us: Some(p50_us),
            p99_us: Some(p99_us),
            p999_us: Some(p99_us * 2),
            acknowledged: 10,
            refused: 0,
            failed: 0,
            capped: false,
            first_problem: None,
        }
    }

    fn floor() -> Floor {
        Floor {
            fdatasync_us: 1_000,
            fdatasync_samples: 10,
            round_trip_us: 50,
            round_trip_samples: 10,
        }
    }

    #[test]
    fn figures_come_from_the_counted_latencies() {
        let outcome = LevelOutcome {
            connections: 16,
            latencies_us: (1..=1000).collect(),
            window: std::time::Duration::from_secs(2),
            refused: 3,
            ..LevelOutcome::default()
        };
        let figures = LevelFigures::of(GAVEL, &outcome);
        assert_eq!(figures.per_second, 500.0);
        assert_eq!(
            (figures.p50_us, figures.p99_us, figures.p999_us),
            (Some(500), Some(990), Some(999))
        );
        assert_eq!((figures.acknowledged, figures.refused), (1000, 3));
    }

    #[test]
    fn ratios_pair_the_systems_by_connection_count() {
        let levels = vec![
            level(GAVEL, 1, 300.0, 3_000, 5_000),
            level(ETCD, 1, 200.0, 4_000, 5_000),
            level(GAVEL, 64, 3_000.0, 20_000, 30_000),
            level(ETCD, 64, 1_000.0, 60_000, 40_000),
            level(GAVEL, 256, 3_000.0, 80_000, 90_000),
        ];
        let ratios = ratios(&levels);
        assert_eq!(ratios.len(), 2, "256 has no etcd row");
        assert_eq!(ratios[0].throughput, Some(1.5));
        assert_eq!(ratios[0].p50, Some(0.75));
        assert_eq!(ratios[1].throughput, Some(3.0));
        assert_eq!(ratios[1].p99, Some(0.75));
        let goals = goals(&ratios, Some(&floor()), &levels);
        assert_eq!(
            goals.iter().map(|goal| goal.met).collect::<Vec<_>>(),
            vec![Some(true), Some(true), Some(true)]
        );
        assert!(
            goals[2].measured.starts_with("1.43×"),
            "{}",
            goals[2].measured
        );
        let slow = vec![level(GAVEL, 1, 300.0, 4_300, 5_000)];
        assert_eq!(super::goals(&[], Some(&floor()), &slow)[2].met, Some(false));
    }

    #[test]
    fn a_worse_p99_misses_the_throughput_goal_and_no_etcd_measures_nothing() {
        let levels = vec![
            level(GAVEL, 64, 3_000.0, 20_000, 50_000),
            level(ETCD, 64, 1_000.0, 60_000, 40_000),
        ];
        assert_eq!(goals(&ratios(&levels), None, &levels)[0].met, Some(false));
        let alone = vec![level(GAVEL, 1, 300.0, 2_000, 5_000)];
        let goals = goals(&ratios(&alone), Some(&floor()), &alone);
        assert_eq!(
            goals.iter().map(|goal| goal.met).collect::<Vec<_>>(),
            vec![None, None, Some(true)]
        );
        assert!(goals_text(&goals).contains("not measured"));
    }

    #[test]
    fn tables_show_milliseconds_and_ratios() {
        let levels = vec![
            level(GAVEL, 1, 312.4, 3_210, 5_000),
            level(ETCD, 1, 200.0, 4_000, 5_000),
        ];
        let table = levels_table(&levels);
        assert_eq!(
            table.rows[0][..6],
            ["Gavel", "1", "312", "3.21", "5.00", "10.00"]
        );
        let ratios = ratios_table(&ratios(&levels));
        assert_eq!(ratios.rows[0], ["1", "1.56×", "0.80×", "1.00×"]);
        let floor = floor_table(&floor(), Some(4_200));
        assert_eq!(floor.rows[0], ["1.00", "0.050", "2.10", "4.20", "2.00×"]);
    }

    #[test]
    fn plots_have_a_line_per_system_measured() {
        let levels = vec![
            level(GAVEL, 1, 300.0, 3_000, 5_000),
            level(GAVEL, 16, 900.0, 9_000, 15_000),
        ];
        let plots = plots(&levels);
        assert_eq!(plots.len(), 3);
        assert_eq!(plots[0].1.series.len(), 1);
        assert_eq!(
            plots[0].1.series[0].points,
            vec![(1.0, 300.0), (16.0, 900.0)]
        );
        assert_eq!(plots[2].1.series[0].points, vec![(1.0, 5.0), (16.0, 15.0)]);
    }
}
