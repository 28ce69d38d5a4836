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

/// Encodes `value` under the format byte `format`; `what` names it in the error. The
/// size is counted first (refused over the limit decoding has) and the record written
/// into a buffer of that size.
pub(crate) fn encode_as<T: Serialize + ?Sized>(
    format: u8,
    what: &str,
    value: &T,
) -> Result<Vec<u8>, StoreError> {
    let failed = |source| StoreError::Encode {
        what: what.to_string(),
        source,
    };
    let size = options().serialized_size(value).map_err(failed)?;
    let mut bytes = Vec::with_capacity(1 + size as usize);
    bytes.push(format);
    options()
        .with_no_limit()
        .serialize_into(&mut bytes, value)
        .map_err(failed)?;
    Ok(bytes)
}

/// Encodes a large `value` (a snapshot) under the format byte `format` in one pass, into
/// a buffer of `capacity` bytes to begin with (the size of the previous one, say):
/// counting a large state's size first costs nearly as much as writing it. The limit
/// decoding has is checked afterwards.
pub(crate) fn encode_large_as<T: Serialize + ?Sized>(
    format: u8,
    what: &str,
    value: &T,
    capacity: usize,
) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::with_capacity(capacity.max(1));
    bytes.push(format);
    options()
        .with_no_limit()
        .serialize_into(&mut bytes, value)
        .map_err(|source| StoreError::Encode {
            what: what.to_string(),
            source,
        })?;
    if bytes.len() as u64 - 1 > MAX_RECORD_BYTES {
        return Err(StoreError::Encode {
            what: what.to_string(),
            source: Box::new(bincode::ErrorKind::SizeLimit),
        });
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encoders_write_the_same_record() {
        let value: Vec<(String, u64)> = (0..1000).map(|n| (format!("bid-{n}"), n)).collect();
        let counted = encode("bids", &value).expect("encode");
        assert_eq!(counted.capacity(), counted.len(), "sized exactly");
        for capacity in [0, 10, counted.len(), 1 << 20] {
            assert_eq!(
                encode_large_as(FORMAT, "bids", &value, capacity).expect("encode"),
                counted
            );
        }
        let back: Vec<(String, u64)> = decode("bids", &counted).expect("decode");
        assert_eq!(back, value);
    }
}
