//! What `gavel chaos` prints: a round's record, the text of a failed round (with the
//! command that replays it), and the table per fault kind ending in `N passed, M failed`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use super::checker::Finding;
use super::faults::FaultKind;

/// One round's outcome.
pub struct RoundRecord {
    pub kind: FaultKind,
    pub seed: u64,
    pub fault: String,
    pub findings: Vec<Finding>,
    pub acknowledged: usize,
    pub refused: usize,
    pub unknown: usize,
    /// Nodes that exited on their own during the round (restarted on healing).
    pub restarts: usize,
    /// From healing to the leader seeing every node up.
    pub recovery: Option<Duration>,
    pub notes: Vec<String>,
}

impl RoundRecord {
    pub fn aborted(kind: FaultKind, seed: u64, error: &anyhow::Error) -> RoundRecord {
        RoundRecord {
            kind,
            seed,
            fault: "round not completed".to_string(),
            findings: vec![Finding::RoundAborted {
                detail: format!("{error:#}"),
            }],
            acknowledged: 0,
            refused: 0,
            unknown: 0,
            restarts: 0,
            recovery: None,
            notes: Vec::new(),
        }
    }
}

pub fn failure_text(number: usize, record: &RoundRecord, logs: &[PathBuf]) -> String {
    let mut text = format!(
        "round {number} ({}) FAILED — {}; replay: gavel chaos --kinds {} --replay {}\n",
        record.kind.name(),
        record.fault,
        record.kind.name(),
        record.seed
    );
    for finding in &record.findings {
        let _ = writeln!(text, "  - {finding}");
    }
    for note in &record.notes {
        let _ = writeln!(text, "  note: {note}");
    }
    for path in logs {
        let _ = writeln!(text, "  node log: {}", path.display());
    }
    text
}

/// The table per fault kind and the last line, `N passed, M failed`.
pub fn report(records: &[RoundRecord]) -> String {
    let mut by_kind: BTreeMap<FaultKind, Vec<&RoundRecord>> = BTreeMap::new();
    for record in records {
        by_kind.entry(record.kind).or_default().push(record);
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "\n| fault | rounds | passed | failed | bids acknowledged | refused | unknown | nodes restarted | recovery p50 ms | recovery max ms |"
    );
    let _ = writeln!(text, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, rounds) in &by_kind {
        let passed = rounds.iter().filter(|r| r.findings.is_empty()).count();
        let mut recoveries: Vec<u128> = rounds
            .iter()
            .filter_map(|r| r.recovery)
            .map(|d| d.as_millis())
            .collect();
        recoveries.sort_unstable();
        let p50 = recoveries
            .get(recoveries.len().saturating_sub(1) / 2)
            .map_or("-".to_string(), u128::to_string);
        let max = recoveries.last().map_or("-".to_string(), u128::to_string);
        let _ = writeln!(
            text,
            "| {} | {} | {passed} | {} | {} | {} | {} | {} | {p50} | {max} |",
            kind.name(),
            rounds.len(),
            rounds.len() - passed,
            rounds.iter().map(|r| r.acknowledged).sum::<usize>(),
            rounds.iter().map(|r| r.refused).sum::<usize>(),
            rounds.iter().map(|r| r.unknown).sum::<usize>(),
            rounds.iter().map(|r| r.restarts).sum::<usize>(),
        );
    }
    let passed = records.iter().filter(|r| r.findings.is_empty()).count();
    let _ = writeln!(text, "\n{passed} passed, {} failed", records.len() - passed);
    text
}
