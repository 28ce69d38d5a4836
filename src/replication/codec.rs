//! The one binary encoding of every record the replication layer writes: a format byte,
//! then bincode with fixed-width integers. Decoding is strict (the format byte must match,
//! no trailing bytes, a size limit so a corrupt length prefix cannot ask for gigabytes),
//! and any failure is a `StoreError::Corrupt` naming the record, never a panic. A record
//! whose shape changed is written under a newer format byte (`encode_as`) and read by
//! `decode_versioned`, which hands each format's body to the decoder of that format.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::StoreError;

/// The first byte of every record; bump it when the encoding changes.
const FORMAT: u8 = 1;

/// Largest record accepted either way (a snapshot is one record).
const MAX_RECORD_BYTES: u64 = 1 << 30;

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
        .with_limit(MAX_RECORD_BYTES)
}

/// Encodes `value`; `what` names it in the error.
pub(crate) fn encode<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    encode_as(FORMAT, what, value)
}

/// Encodes `value` under the format byte `format`; `what` names it in the error.
pub(crate) fn encode_as<T: Serialize + ?Sized>(
    format: u8,
    what: &str,
    value: &T,
) -> Result<Vec<u8>, StoreError> {
    let mut bytes = vec![format];
    options()
        .serialize_into(&mut bytes, value)
        .map_err(|source| StoreError::Encode {
            what: what.to_string(),
            source,
        })?;
    Ok(bytes)
}

/// Decodes a record written by `encode`; `what` names it in the error.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        None => Err(StoreError::corrupt(what, "empty record")),
        Some((&format, body)) if format == FORMAT => options()
            .deserialize(body)
            .map_err(|error| StoreError::corrupt(what, error.to_string())),
        Some((&format, _)) => Err(StoreError::corrupt(
            what,
            format!("unknown record format {format} (expected {FORMAT})"),
        )),
    }
}

/// Decodes the body of a record of one format; `what` names the record in errors.
pub(crate) type BodyDecoder<T> = fn(&str, &[u8]) -> Result<T, StoreError>;

/// Decodes a record written by `encode_as` under any of the formats `decoders` names: the
/// record's format byte picks the decoder, which gets the body. An unknown format is
/// `Corrupt`.
pub(crate) fn decode_versioned<T>(
    what: &str,
    bytes: &[u8],
    decoders: &[(u8, BodyDecoder<T>)],
) -> Result<T, StoreError> {
    let Some((&format, body)) = bytes.split_first() else {
        return Err(StoreError::corrupt(what, "empty record"));
    };
    match decoders.iter().find(|(known, _)| *known == format) {
        Some((_, decoder)) => decoder(what, body),
        None => Err(StoreError::corrupt(
            what,
            format!("unknown record format {format}"),
        )),
    }
}

/// Decodes the body of a record (without its format byte).
pub(crate) fn decode_body<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, StoreError> {
    options()
        .deserialize(body)
        .map_err(|error| StoreError::corrupt(what, error.to_string()))
}
