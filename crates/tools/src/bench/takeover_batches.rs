//! The takeover benchmark's figures in the old system's shape: its report measured
//! 5 batches of 100 takeovers each (100% success, 19–25 s, mean about 22 s,
//! the old system's published report). `gavel bench takeover --batches 5 --kills 100` groups its kills the
//! same way; this module turns the kill records into a row per batch and an overall
//! row (success rate; mean, p99 and max from the kill to the first committed bid), the
//! per-kill table as Markdown, and the per-kill plot. Plain data in, tables out.

use std::time::Duration;

use super::report::{percentile, KillRecord, OLD_SYSTEM_TAKEOVER_MS_MEAN};
use super::results::{Plot, Series, Table};

/// One batch of kills (or, with `batch: None`, all of them).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub batch: Option<usize>,
    pub kills: usize,
    pub succeeded: usize,
    /// Kill → first committed bid over the kills that saw one.
    pub first_commit_mean: Option<Duration>,
    pub first_commit_p99: Option<Duration>,
    pub first_commit_max: Option<Duration>,
    /// Kill → voters at full strength over the kills that reached it.
    pub full_strength_p99: Option<Duration>,
}

impl BatchRow {
    fn of(batch: Option<usize>, kills: &[KillRecord]) -> BatchRow {
        let first: Vec<Duration> = kills.iter().filter_map(|kill| kill.first_commit).collect();
        let full: Vec<Duration> = kills.iter().filter_map(|kill| kill.full_strength).collect();
        BatchRow {
            batch,
            kills: kills.len(),
            succeeded: kills.iter().filter(|kill| kill.succeeded()).count(),
            first_commit_mean: mean(&first),
            first_commit_p99: percentile(&first, 0.99),
            first_commit_max: first.iter().max().copied(),
            full_strength_p99: percentile(&full, 0.99),
        }
    }

    /// Succeeded kills in percent of the kills made (0 with none).
    pub fn success_percent(&self) -> f64 {
        match self.kills {
            0 => 0.0,
            kills => 100.0 * self.succeeded as f64 / kills as f64,
        }
    }
}

fn mean(values: &[Duration]) -> Option<Duration> {
    let count = u32::try_from(values.len())
        .ok()
        .filter(|count| *count > 0)?;
    Some(values.iter().sum::<Duration>() / count)
}

/// A row per batch of `kills_per_batch` consecutive kills (the last may be short, if
/// the run stopped early), then the overall row.
pub fn batch_rows(kills: &[KillRecord], kills_per_batch: usize) -> Vec<BatchRow> {
    let mut rows: Vec<BatchRow> = kills
        .chunks(kills_per_batch.max(1))
        .enumerate()
        .map(|(index, batch)| BatchRow::of(Some(index + 1), batch))
        .collect();
    rows.push(BatchRow::of(None, kills));
    rows
}

fn millis(value: Option<Duration>) -> String {
    value.map_or_else(|| "-".to_string(), |value| value.as_millis().to_string())
}

/// The batch rows beside the old system's figures.
pub fn batch_table(rows: &[BatchRow]) -> Table {
    let mut table = Table::new(&[
        "batch",
        "kills",
        "succeeded",
        "success",
        "kill→first bid mean ms",
        "p99 ms",
        "max ms",
        "kill→full strength p99 ms",
    ]);
    for row in rows {
        table.push(vec![
            row.batch
                .map_or_else(|| "all".to_string(), |batch| batch.to_string()),
            row.kills.to_string(),
            row.succeeded.to_string(),
            format!("{:.0}%", row.success_percent()),
            millis(row.first_commit_mean),
            millis(row.first_commit_p99),
            millis(row.first_commit_max),
            millis(row.full_strength_p99),
        ]);
    }
    table.push(vec![
        "old system, per batch".to_string(),
        "100".to_string(),
        "100".to_string(),
        "100%".to_string(),
        format!("≈{OLD_SYSTEM_TAKEOVER_MS_MEAN}"),
        "-".to_string(),
        "25000".to_string(),
        "-".to_string(),
    ]);
    table
}

/// Whether a batch row meets the goal: every kill succeeded, p99 under one second.
pub fn meets_goal(row: &BatchRow) -> bool {
    row.kills > 0
        && row.succeeded == row.kills
        && row
            .first_commit_p99
            .is_some_and(|p99| p99 < Duration::from_secs(1))
}

/// The per-kill table (report::kill_table's columns) for Markdown.
pub fn kill_rows(kills: &[KillRecord], kills_per_batch: usize) -> Table {
    let mut table = Table::new(&[
        "kill",
        "batch",
        "killed",
        "new leader",
        "kill→first bid ms",
        "kill→full strength ms",
        "rejoin ms",
        "result",
    ]);
    let node = |id: Option<u64>| id.map_or_else(|| "-".to_string(), |id| id.to_string());
    for kill in kills {
        table.push(vec![
            kill.number.to_string(),
            ((kill.number.max(1) - 1) / kills_per_batch.max(1) + 1).to_string(),
            node(kill.killed),
            node(kill.new_leader),
            millis(kill.first_commit),
            millis(kill.full_strength),
            millis(kill.rejoined),
            if kill.succeeded() {
                "ok".to_string()
            } else {
                format!("failed: {}", kill.failures.join("; "))
            },
        ]);
    }
    table
}

/// Kill → first committed bid and kill → full strength, per kill.
pub fn kill_plot(kills: &[KillRecord]) -> Plot {
    let series = |name: &str, value: fn(&KillRecord) -> Option<Duration>| Series {
        name: name.to_string(),
        points: kills
            .iter()
            .filter_map(|kill| Some((kill.number as f64, value(kill)?.as_secs_f64() * 1000.0)))
            .collect(),
    };
    Plot {
        title: "Leader SIGKILLed under bidding load".to_string(),
        x_label: "kill".to_string(),
        y_label: "ms after the kill".to_string(),
        log_x: false,
        series: vec![
            series("kill → first committed bid", |kill| kill.first_commit),
            series("kill → voters at full strength", |kill| {
                kill.full_strength
            }),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kill(number: usize, first_commit_ms: Option<u64>) -> KillRecord {
        KillRecord {
            number,
            killed: Some(1),
            new_leader: Some(2),
            first_commit: first_commit_ms.map(Duration::from_millis),
            full_strength: first_commit_ms.map(|ms| Duration::from_millis(ms + 50)),
            rejoined: Some(Duration::from_millis(100)),
            failures: match first_commit_ms {
                Some(_) => vec![],
                None => vec!["no bid committed within 15 s".to_string()],
            },
        }
    }

    #[test]
    fn kills_are_grouped_in_batches_with_an_overall_row() {
        let kills: Vec<KillRecord> = (1..=5)
            .map(|number| kill(number, Some(100 * number as u64)))
            .collect();
        let rows = batch_rows(&kills, 2);
        let batches: Vec<(Option<usize>, usize)> =
            rows.iter().map(|row| (row.batch, row.kills)).collect();
        assert_eq!(
            batches,
            vec![(Some(1), 2), (Some(2), 2), (Some(3), 1), (None, 5)]
        );
        assert_eq!(rows[0].first_commit_mean, Some(Duration::from_millis(150)));
        assert_eq!(rows[1].first_commit_p99, Some(Duration::from_millis(400)));
        assert_eq!(rows[3].first_commit_max, Some(Duration::from_millis(500)));
        assert_eq!(rows[3].full_strength_p99, Some(Duration::from_millis(550)));
    }

    #[test]
    fn a_failed_kill_lowers_the_success_rate_and_misses_the_goal() {
        let kills = vec![kill(1, Some(300)), kill(2, None), kill(3, Some(500))];
        let rows = batch_rows(&kills, 3);
        assert_eq!(rows[0].succeeded, 2);
        assert!((rows[0].success_percent() - 66.666).abs() < 0.01);
        assert_eq!(rows[0].first_commit_mean, Some(Duration::from_millis(400)));
        assert!(!meets_goal(&rows[0]));
        assert!(meets_goal(&batch_rows(&kills[..1], 1)[0]));
        assert!(!meets_goal(&batch_rows(&[kill(1, Some(1000))], 1)[0]));
    }

    #[test]
    fn the_batch_table_ends_with_the_old_systems_row() {
        let rows = batch_rows(&[kill(1, Some(600)), kill(2, None)], 1);
        let table = batch_table(&rows);
        let first: Vec<&str> = table.rows.iter().map(|row| row[0].as_str()).collect();
        assert_eq!(first, vec!["1", "2", "all", "old system, per batch"]);
        assert_eq!(table.rows[1][3], "0%");
        assert_eq!(table.rows[1][4], "-");
        assert_eq!(table.rows[2][3], "50%");
        assert_eq!(table.rows[3][4], "≈22000");
    }

    #[test]
    fn kill_rows_name_their_batch_and_the_plot_skips_missing_points() {
        let kills = vec![kill(1, Some(600)), kill(2, None), kill(3, Some(700))];
        let table = kill_rows(&kills, 2);
        let batches: Vec<&str> = table.rows.iter().map(|row| row[1].as_str()).collect();
        assert_eq!(batches, vec!["1", "1", "2"]);
        assert!(table.rows[1][7].starts_with("failed: no bid committed"));
        let plot = kill_plot(&kills);
        assert_eq!(plot.series[0].points, vec![(1.0, 600.0), (3.0, 700.0)]);
    }
}
