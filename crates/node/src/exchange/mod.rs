//! The spool's file format (docs/DESIGN.md decision 6): JSON lines, one record
//! `{key, status, data}` per line, then a checksum line
//! `{"checksum": "hmac-sha256:<hex>", "records": N}` whose hex is the HMAC-SHA256, keyed
//! with the spool's key (`exchange.hmac_key_file`), of every byte before that line. Both
//! sides of the air gap hold the key, so a file that anyone else wrote or altered fails
//! its MAC; a file with a plain `sha256:` checksum (the format before the key) is not
//! authenticated and fails too. Reading checks the whole file first (UTF-8, MAC, count,
//! size), then each record on its own (shape, key, status, the command's fields), so one
//! bad record is named and the rest still apply. The Exchange actor (`actors::exchange`)
//! moves the files.
//!
//! What Gavel keeps of an inbound file never holds a bidder's secret: `redacted_line`
//! replaces every `secret` before a record is written to `processed/` or to a
//! `*.rejected.jsonl` file.

use std::path::Path;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::model::requests::{create_auction_command, AuctionSpecRequest, DepositRequest};
use gavel_kernel::types::{validate_id, validate_text};
use gavel_kernel::Command;

/// Largest inbound file taken.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Most records in one inbound file.
pub const MAX_RECORDS: usize = 10_000;

/// How a checksum line names an HMAC-SHA256.
pub const MAC_PREFIX: &str = "hmac-sha256:";
/// What stands in for a secret in the files Gavel keeps.
pub const REDACTED: &str = "<redacted>";

/// The spool's HMAC key. Debug output never shows it.
#[derive(Clone)]
pub struct SpoolKey(Vec<u8>);

impl SpoolKey {
    /// A key of at least 32 bytes (the config's rule for `exchange.hmac_key_file`).
    pub fn new(bytes: Vec<u8>) -> Self {
        SpoolKey(bytes)
    }

    /// The hex HMAC-SHA256 of `body`.
    fn mac_hex(&self, body: &[u8]) -> String {
        hex::encode(self.mac(body).finalize().into_bytes())
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length: the error case cannot happen.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(body);
        mac
    }

    /// Whether `mac_hex` is the HMAC of `body`, compared in constant time.
    fn verifies(&self, body: &[u8], mac_hex: &str) -> bool {
        hex::decode(mac_hex).is_ok_and(|tag| self.mac(body).verify_slice(&tag).is_ok())
    }
}

impl std::fmt::Debug for SpoolKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SpoolKey(<redacted>)")
    }
}

/// `body` with its checksum line, the HMAC of `body` under `key`.
pub fn with_mac(body: &[u8], records: usize, key: &SpoolKey) -> Vec<u8> {
    let mut file = body.to_vec();
    let line = serde_json::json!({
        "checksum": format!("{MAC_PREFIX}{}", key.mac_hex(body)),
        "records": records,
    });
    file.extend_from_slice(format!("{line}\n").as_bytes());
    file
}

/// A line as Gavel keeps it: every `secret` field replaced by `REDACTED`; a line that is
/// not JSON (so may hold anything) is not kept at all, only its length.
pub fn redacted_line(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut value) => {
            redact(&mut value);
            value.to_string()
        }
        Err(_) => serde_json::json!({ "not_json_bytes": text.len() }).to_string(),
    }
}

fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if name == "secret" {
                    *field = serde_json::Value::String(REDACTED.to_string());
                } else {
                    redact(field);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// What `processed/` keeps of an inbound file: its lines redacted, under a new MAC.
pub fn processed_copy(lines: &[Line], key: &SpoolKey) -> Vec<u8> {
    let body: String = lines
        .iter()
        .map(|line| format!("{}\n", redacted_line(&line.text)))
        .collect();
    with_mac(body.as_bytes(), lines.len(), key)
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

pub fn parse_file(bytes: &[u8], key: &SpoolKey) -> Result<Vec<Line>, FileProblem> {
    let text = std::str::from_utf8(bytes)
        .map_err(|error| FileProblem::Bad(format!("not UTF-8: {error}")))?;
    let body_and_last = text.trim_end_matches('\n');
    let (body, last) = match body_and_last.rfind('\n') {
        Some(split) => (&text[..split + 1], &body_and_last[split + 1..]),
        None => ("", body_and_last),
    };
    let checksum: ChecksumLine = serde_json::from_str(last)
        .map_err(|_| FileProblem::Incomplete("no checksum line at its end".to_string()))?;
    let Some(mac_hex) = checksum.checksum.strip_prefix(MAC_PREFIX) else {
        return Err(FileProblem::Bad(format!(
            "its checksum line is not an HMAC ({MAC_PREFIX}...): the file is not authenticated"
        )));
    };
    if !key.verifies(body.as_bytes(), mac_hex) {
        return Err(FileProblem::Bad(
            "its HMAC does not match its records: written without the spool's key, or altered"
                .to_string(),
        ));
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
        spec: Box<AuctionSpecRequest>,
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
    /// A deposit from a bank receipt (docs/RULES.md, "Deposits").
    RecordDeposit {
        auction_id: String,
        bidder_id: String,
        amount: u64,
        reference: String,
    },
}

fn parse_record(line: &str) -> Result<(String, Inbound), String> {
    let record: InboundRecord =
        serde_json::from_str(line).map_err(|error| format!("not a record: {error}"))?;
    validate_id("key", &record.key).map_err(|error| error.to_string())?;
    if record.status != "new" {
        return Err(format!("status must be \"new\", not {:?}", record.status));
    }
    let invalid = |error: gavel_kernel::Rejection| error.to_string();
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
        RecordData::CreateAuction { spec } => {
            let (spec, rules) = spec.into_spec().map_err(|error| error.to_string())?;
            create_auction_command(spec, rules)
        }
        RecordData::RecordDeposit {
            auction_id,
            bidder_id,
            amount,
            reference,
        } => {
            validate_id("auction_id", &auction_id).map_err(invalid)?;
            let deposit = DepositRequest {
                bidder_id,
                amount,
                reference,
            };
            deposit
                .into_command(auction_id)
                .map_err(|error| error.to_string())?
        }
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

    fn key() -> SpoolKey {
        SpoolKey::new(vec![7u8; 32])
    }

    fn file(lines: &[&str]) -> Vec<u8> {
        let body: String = lines.iter().map(|line| format!("{line}\n")).collect();
        with_mac(body.as_bytes(), lines.len(), &key())
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
        let lines = parse_file(&bytes, &key()).ok().expect("complete");
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
            parse_file(format!("{record}\n").as_bytes(), &key()),
            Err(FileProblem::Incomplete(_))
        ));
        let mut bytes = file(&[record]);
        bytes[10] = b'X';
        assert!(matches!(
            parse_file(&bytes, &key()),
            Err(FileProblem::Bad(_))
        ));
        let body = format!("{record}\n");
        let miscounted = with_mac(body.as_bytes(), 2, &key());
        assert!(matches!(
            parse_file(&miscounted, &key()),
            Err(FileProblem::Bad(_))
        ));
        assert!(parse_file(&file(&[record]), &key()).is_ok());
    }

    #[test]
    fn a_file_without_the_spools_hmac_is_refused() {
        use sha2::Digest;
        let record = r#"{"key":"k-1","status":"new","data":{"type":"resume","auction_id":"a"}}"#;
        let body = format!("{record}\n");
        let other_key = SpoolKey::new(vec![8u8; 32]);
        let problem = |bytes: &[u8]| match parse_file(bytes, &key()) {
            Err(FileProblem::Bad(reason)) => reason,
            Err(FileProblem::Incomplete(reason)) => panic!("incomplete: {reason}"),
            Ok(_) => panic!("accepted"),
        };
        assert!(problem(&with_mac(body.as_bytes(), 1, &other_key)).contains("HMAC"));
        let plain = format!(
            "{body}{}\n",
            serde_json::json!({"checksum": format!("sha256:{}", hex::encode(sha2::Sha256::digest(body.as_bytes()))), "records": 1})
        );
        assert!(problem(plain.as_bytes()).contains("not authenticated"));
    }

    #[test]
    fn kept_lines_hold_no_secret() {
        let line = r#"{"key":"k","status":"new","data":{"type":"register_bidder","bidder_id":"b","name":"B","secret":"hunter2-long"}}"#;
        let kept = redacted_line(line);
        assert!(
            !kept.contains("hunter2-long") && kept.contains(REDACTED),
            "{kept}"
        );
        let broken = r#"{"secret":"hunter2-long""#;
        assert!(!redacted_line(broken).contains("hunter2"));
        let lines = parse_file(&file(&[line]), &key()).ok().expect("read");
        let copy = processed_copy(&lines, &key());
        assert!(!String::from_utf8_lossy(&copy).contains("hunter2-long"));
        assert!(
            parse_file(&copy, &key()).is_ok(),
            "the copy carries a good MAC"
        );
    }
}
