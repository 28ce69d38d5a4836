//! The spool's file format (DESIGN.md decision 6): JSON lines, one record
//! `{key, status, data}` per line, then a checksum line
//! `{"checksum": "sha256:<hex of every byte before it>", "records": N}`. Reading checks
//! the whole file first (UTF-8, checksum, count, size), then each record on its own
//! (shape, key, status, the command's fields), so one bad record is named and the rest
//! still apply. The Exchange actor (`actors::exchange`) moves the files.

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::api::requests::AuctionSpecRequest;
use crate::kernel::types::{validate_id, validate_text};
use crate::kernel::Command;

/// Largest inbound file taken.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Most records in one inbound file.
pub const MAX_RECORDS: usize = 10_000;

/// `body` with its checksum line.
pub fn with_checksum(body: &[u8], records: usize) -> Vec<u8> {
    let mut file = body.to_vec();
    let line = serde_json::json!({
        "checksum": format!("sha256:{}", hex::encode(Sha256::digest(body))),
        "records": records,
    });
    file.extend_from_slice(format!("{line}\n").as_bytes());
    file
}

/// One line of an inbound file, read.
pub struct Line {
    pub number: usize,
    pub key: Option<String>,
    pub text: String,
    pub record: Result<(String, Inbound), String>,
}

/// What a good inbound record asks for.
pub enum Inbound {
    /// A command, ready to propose.
    Command(Command),
    /// A bidder to register: the secret still has to be hashed (Argon2id, slow: the
    /// Exchange actor hashes it just before proposing, through the node's hasher).
    RegisterBidder {
        bidder_id: String,
        name: String,
        secret: String,
    },
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Inbound::Command(command) => formatter.debug_tuple("Command").field(command).finish(),
            Inbound::RegisterBidder {
                bidder_id, name, ..
            } => formatter
                .debug_struct("RegisterBidder")
                .field("bidder_id", bidder_id)
                .field("name", name)
                .finish_non_exhaustive(),
        }
    }
}

impl Inbound {
    /// The command to propose, given the Argon2id record of the secret when there is one.
    pub fn into_command(self, secret_hash: Option<String>) -> Command {
        match self {
            Inbound::Command(command) => command,
            Inbound::RegisterBidder {
                bidder_id, name, ..
            } => Command::RegisterBidder {
                bidder_id,
                name,
                secret_salt: String::new(),
                secret_hash: secret_hash.unwrap_or_default(),
            },
        }
    }

    /// The secret to hash before proposing, if any.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Inbound::RegisterBidder { secret, .. } => Some(secret),
            Inbound::Command(_) => None,
        }
    }
}

pub enum FileProblem {
    /// No checksum line yet: the file may still be arriving.
    Incomplete(String),
    Bad(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksumLine {
    checksum: String,
    records: usize,
}

pub fn parse_file(bytes: &[u8]) -> Result<Vec<Line>, FileProblem> {
    let text = std::str::from_utf8(bytes)
        .map_err(|error| FileProblem::Bad(format!("not UTF-8: {error}")))?;
    let body_and_last = text.trim_end_matches('\n');
    let (body, last) = match body_and_last.rfind('\n') {
        Some(split) => (&text[..split + 1], &body_and_last[split + 1..]),
        None => ("", body_and_last),
    };
    let checksum: ChecksumLine = serde_json::from_str(last)
        .map_err(|_| FileProblem::Incomplete("no checksum line at its end".to_string()))?;
    let expected = format!("sha256:{}", hex::encode(Sha256::digest(body.as_bytes())));
    if checksum.checksum != expected {
        return Err(FileProblem::Bad(format!(
            "checksum {} does not match its records ({expected})",
            checksum.checksum
        )));
    }
    let lines: Vec<&str> = body
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    if lines.len() != checksum.records {
        return Err(FileProblem::Bad(format!(
            "{} records, its checksum line says {}",
            lines.len(),
            checksum.records
        )));
    }
    if lines.len() > MAX_RECORDS {
        return Err(FileProblem::Bad(format!("more than {MAX_RECORDS} records")));
    }
    Ok(lines
        .into_iter()
        .enumerate()
        .map(|(index, line)| {
            let key = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|value| value["key"].as_str().map(str::to_string));
            Line {
                number: index + 1,
                key,
                text: line.to_string(),
                record: parse_record(line),
            }
        })
        .collect())
}

/// `{key, status, data}` from the intranet.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundRecord {
    key: String,
    status: String,
    data: RecordData,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RecordData {
    RegisterBidder {
        bidder_id: String,
        name: String,
        secret: String,
    },
    Qualify {
        auction_id: String,
        bidder_id: String,
    },
    CreateAuction {
        spec: AuctionSpecRequest,
    },
    Suspend {
        auction_id: String,
        #[serde(default)]
        reason: String,
    },
    Resume {
        auction_id: String,
        #[serde(default)]
        reason: String,
    },
    Terminate {
        auction_id: String,
        #[serde(default)]
        reason: String,
    },
}

fn parse_record(line: &str) -> Result<(String, Inbound), String> {
    let record: InboundRecord =
        serde_json::from_str(line).map_err(|error| format!("not a record: {error}"))?;
    validate_id("key", &record.key).map_err(|error| error.to_string())?;
    if record.status != "new" {
        return Err(format!("status must be \"new\", not {:?}", record.status));
    }
    let invalid = |error: crate::kernel::Rejection| error.to_string();
    let command = match record.data {
        RecordData::RegisterBidder {
            bidder_id,
            name,
            secret,
        } => {
            validate_id("bidder_id", &bidder_id).map_err(invalid)?;
            validate_text("name", &name, true).map_err(invalid)?;
            let length = secret.chars().count();
            if !(8..=256).contains(&length) {
                return Err("secret must be 8 to 256 characters".to_string());
            }
            return Ok((
                record.key,
                Inbound::RegisterBidder {
                    bidder_id,
                    name,
                    secret,
                },
            ));
        }
        RecordData::Qualify {
            auction_id,
            bidder_id,
        } => {
            validate_id("auction_id", &auction_id).map_err(invalid)?;
            validate_id("bidder_id", &bidder_id).map_err(invalid)?;
            Command::Qualify {
                auction_id,
                bidder_id,
            }
        }
        RecordData::CreateAuction { spec } => Command::CreateAuction {
            spec: spec.into_spec().map_err(|error| error.to_string())?,
        },
        RecordData::Suspend { auction_id, reason } => {
            phase_command(&auction_id, &reason)?;
            Command::Suspend { auction_id, reason }
        }
        RecordData::Resume { auction_id, reason } => {
            phase_command(&auction_id, &reason)?;
            Command::Resume { auction_id, reason }
        }
        RecordData::Terminate { auction_id, reason } => {
            phase_command(&auction_id, &reason)?;
            Command::Terminate { auction_id, reason }
        }
    };
    Ok((record.key, Inbound::Command(command)))
}

fn phase_command(auction_id: &str, reason: &str) -> Result<(), String> {
    validate_id("auction_id", auction_id).map_err(|error| error.to_string())?;
    validate_text("reason", reason, false).map_err(|error| error.to_string())
}

/// Writes `bytes` to a hidden file beside `path` (mode 0600, `O_EXCL`, `O_NOFOLLOW`),
/// syncs it, renames it to `path` and syncs the directory.
pub fn write_aside_then_rename(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::private_files::write_aside_then_rename(path, bytes)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(lines: &[&str]) -> Vec<u8> {
        let body: String = lines.iter().map(|line| format!("{line}\n")).collect();
        with_checksum(body.as_bytes(), lines.len())
    }

    #[test]
    fn complete_files_are_read_and_bad_records_named() {
        let bytes = file(&[
            r#"{"key":"k-1","status":"new","data":{"type":"qualify","auction_id":"lot-1","bidder_id":"ada"}}"#,
            r#"{"key":"k-2","status":"done","data":{"type":"qualify","auction_id":"lot-1","bidder_id":"ada"}}"#,
            r#"{"key":"k 3","status":"new","data":{"type":"qualify","auction_id":"lot-1","bidder_id":"ada"}}"#,
            r#"{"key":"k-4","status":"new","data":{"type":"place_bid","auction_id":"lot-1"}}"#,
            r#"{"key":"k-5","status":"new","data":{"type":"register_bidder","bidder_id":"bo","name":"Bo","secret":"short"}}"#,
            r#"not json"#,
        ]);
        let lines = parse_file(&bytes).ok().expect("complete");
        assert!(
            matches!(&lines[0].record, Ok((key, Inbound::Command(Command::Qualify { .. }))) if key == "k-1")
        );
        for (index, why) in [
            (1, "status"),
            (2, "key"),
            (3, "unknown variant"),
            (4, "secret"),
            (5, "not a record"),
        ] {
            let reason = lines[index].record.as_ref().expect_err("refused");
            assert!(reason.contains(why), "line {}: {reason}", index + 1);
        }
        assert_eq!(lines[1].key.as_deref(), Some("k-2"));
    }

    #[test]
    fn a_file_without_its_checksum_line_waits_and_a_wrong_one_is_refused() {
        let record = r#"{"key":"k-1","status":"new","data":{"type":"resume","auction_id":"a"}}"#;
        assert!(matches!(
            parse_file(format!("{record}\n").as_bytes()),
            Err(FileProblem::Incomplete(_))
        ));
        let mut bytes = file(&[record]);
        bytes[10] = b'X';
        assert!(matches!(parse_file(&bytes), Err(FileProblem::Bad(_))));
        let body = format!("{record}\n");
        let mut miscounted = body.as_bytes().to_vec();
        miscounted.extend_from_slice(
            format!(
                "{{\"checksum\":\"sha256:{}\",\"records\":2}}\n",
                hex::encode(Sha256::digest(body.as_bytes()))
            )
            .as_bytes(),
        );
        assert!(matches!(parse_file(&miscounted), Err(FileProblem::Bad(_))));
        assert!(parse_file(&file(&[record])).is_ok());
    }
}
