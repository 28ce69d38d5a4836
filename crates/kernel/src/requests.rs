//! A bidder's idempotency records (`State::requests`): what each request_id was used for.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use imbl::shared_ptr::DefaultSharedPtr;
use imbl::GenericHashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::command::Receipt;
use super::types::Money;

/// What a bid's request_id was used for, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub auction_id: String,
    pub amount: Money,
    pub receipt: Receipt,
    pub recorded_at_ms: u64,
}

/// Where a request_id's record is filed: the first 16 bytes of the id's SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestKey(u128);

impl Hash for RequestKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0 as u64);
    }
}

/// Hashes a `RequestKey` to its own low bits: they are already a digest's, evenly
/// spread, and the same on every node.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyBits;

impl BuildHasher for KeyBits {
    type Hasher = KeyBitsHasher;

    fn build_hasher(&self) -> KeyBitsHasher {
        KeyBitsHasher(0)
    }
}

#[derive(Debug)]
pub struct KeyBitsHasher(u64);

impl Hasher for KeyBitsHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, bits: u64) {
        self.0 ^= bits;
    }
}

type Records = GenericHashMap<RequestKey, Arc<(String, RequestRecord)>, KeyBits, DefaultSharedPtr>;

impl RequestKey {
    pub fn of(request_id: &str) -> Self {
        let digest = Sha256::digest(request_id.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        RequestKey(u128::from_be_bytes(first))
    }
}

/// One bidder's request records, by request_id. A record is filed under its id's
/// `RequestKey` in a hash trie, so a look-up goes down a few nodes by the key's bits
/// instead of comparing its way down a search tree (a heavy bidder has hundreds of
/// thousands of records; keys are digests, so a search tree's look-ups land anywhere
/// and miss the cache at every comparison); each record keeps its id, which a look-up
/// returns for the caller to check. A persistent map of shared records, like an
/// auction's bids: a clone (a snapshot's) shares it, and the first write to a part of it
/// after that copies only that part's keys and pointers. Encoded as a map from request_id
/// to record, as when the ids were the keys: in request_id order in JSON (so
/// `State::digest` is what it was), in the trie's order in the binary encoding of
/// snapshots, which every reader decodes into a map alike and which sorting would make
/// several times slower to write.
///
/// Beside the records, a time no record was recorded before: a purge looks at a bidder's
/// records only once that time has expired, and otherwise leaves them alone (a scan of a
/// heavy bidder's records took tens of milliseconds, every few seconds, on every node).
/// It is derived from the records (kept as they are inserted, exact after a scan, rebuilt
/// as they are decoded), so it is neither encoded nor compared.
#[derive(Debug, Clone)]
pub struct RequestRecords {
    records: Records,
    recorded_since_ms: u64,
}

impl Default for RequestRecords {
    fn default() -> Self {
        RequestRecords {
            records: Records::default(),
            recorded_since_ms: u64::MAX,
        }
    }
}

impl PartialEq for RequestRecords {
    fn eq(&self, other: &Self) -> bool {
        self.records == other.records
    }
}

impl Eq for RequestRecords {}

impl RequestRecords {
    /// The record filed under `key`, with the request_id it was recorded for (the id
    /// `key` was made of, unless two ids share a key).
    pub fn get(&self, key: RequestKey) -> Option<(&str, &RequestRecord)> {
        self.records
            .get(&key)
            .map(|record| (record.0.as_str(), &record.1))
    }

    /// Files `record` under `key`, which must be `RequestKey::of(&request_id)`.
    pub fn insert(&mut self, key: RequestKey, request_id: String, record: RequestRecord) {
        self.recorded_since_ms = self.recorded_since_ms.min(record.recorded_at_ms);
        self.records.insert(key, Arc::new((request_id, record)));
    }

    /// Whether `request_id` has a record.
    pub fn contains_key(&self, request_id: &str) -> bool {
        self.get(RequestKey::of(request_id))
            .is_some_and(|(recorded_id, _)| recorded_id == request_id)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every (request_id, record), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RequestRecord)> {
        self.records
            .values()
            .map(|record| (record.0.as_str(), &record.1))
    }

    /// Removes the records kept `retention_ms` or longer at `now_ms`; returns how many.
    pub fn remove_expired(&mut self, now_ms: u64, retention_ms: u64) -> u64 {
        let expired = |recorded_at_ms: u64| recorded_at_ms.saturating_add(retention_ms) <= now_ms;
        if self.records.is_empty() || !expired(self.recorded_since_ms) {
            return 0;
        }
        let mut keys = Vec::new();
        let mut recorded_since_ms = u64::MAX;
        for (key, record) in self.records.iter() {
            if expired(record.1.recorded_at_ms) {
                keys.push(*key);
            } else {
                recorded_since_ms = recorded_since_ms.min(record.1.recorded_at_ms);
            }
        }
        for key in &keys {
            self.records.remove(key);
        }
        self.recorded_since_ms = recorded_since_ms;
        keys.len() as u64
    }
}

impl FromIterator<(String, RequestRecord)> for RequestRecords {
    fn from_iter<I: IntoIterator<Item = (String, RequestRecord)>>(records: I) -> Self {
        let mut map = RequestRecords::default();
        for (request_id, record) in records {
            map.insert(RequestKey::of(&request_id), request_id, record);
        }
        map
    }
}

impl Serialize for RequestRecords {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serializer.collect_map(self.iter());
        }
        let mut sorted: Vec<(&str, &RequestRecord)> = self.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        serializer.collect_map(sorted)
    }
}

impl<'de> Deserialize<'de> for RequestRecords {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let records = BTreeMap::<String, RequestRecord>::deserialize(deserializer)?;
        Ok(records.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Receipt;

    fn record(amount: u64) -> RequestRecord {
        RequestRecord {
            auction_id: "lot-1".to_string(),
            amount,
            receipt: Receipt {
                bid_id: format!("bid-{amount}"),
                seq: amount,
                auction_id: "lot-1".to_string(),
                amount,
                accepted_at_ms: 5,
            },
            recorded_at_ms: amount,
        }
    }

    #[test]
    fn records_are_found_by_id_and_encode_as_a_map() {
        let ids = ["r-3", "r-1", "a-22", "r-10"];
        let records: RequestRecords = ids
            .iter()
            .zip(1..)
            .map(|(id, amount)| (id.to_string(), record(amount)))
            .collect();
        assert_eq!(records.len(), 4);
        assert_eq!(
            records.get(RequestKey::of("r-1")),
            Some(("r-1", &record(2)))
        );
        assert_eq!(records.get(RequestKey::of("r-2")), None);
        assert!(records.contains_key("a-22") && !records.contains_key("a-2"));

        let as_map: BTreeMap<String, RequestRecord> = ids
            .iter()
            .zip(1..)
            .map(|(id, amount)| (id.to_string(), record(amount)))
            .collect();
        // JSON (the state's digest): as the map of ids, in id order.
        let json = serde_json::to_string(&records).expect("encode");
        assert_eq!(json, serde_json::to_string(&as_map).expect("encode"));
        // Binary (snapshots): a map either way; each reads as the other.
        let binary = bincode::serialize(&records).expect("encode");
        let back: RequestRecords = bincode::deserialize(&binary).expect("decode");
        assert_eq!(back, records);
        let as_before: BTreeMap<String, RequestRecord> =
            bincode::deserialize(&binary).expect("decode as a map of ids");
        assert_eq!(as_before, as_map);
        let old_snapshot = bincode::serialize(&as_map).expect("encode");
        let read: RequestRecords = bincode::deserialize(&old_snapshot).expect("decode");
        assert_eq!(read, records);
    }

    #[test]
    fn a_clone_keeps_its_records_when_the_original_changes() {
        let mut records: RequestRecords = (1..=200)
            .map(|amount| (format!("r-{amount}"), record(amount)))
            .collect();
        let snapshot = records.clone();
        records.insert(RequestKey::of("r-new"), "r-new".to_string(), record(999));
        records.remove_expired(10, 0);
        assert_eq!(snapshot.len(), 200);
        assert_eq!(
            snapshot.get(RequestKey::of("r-5")),
            Some(("r-5", &record(5)))
        );
        assert_eq!(snapshot.get(RequestKey::of("r-new")), None);
        assert_eq!(records.len(), 191);
    }

    #[test]
    fn remove_expired_drops_only_records_kept_long_enough() {
        let mut records: RequestRecords = (1..=6)
            .map(|amount| (format!("r-{amount}"), record(amount)))
            .collect();
        // Recorded at 1..=6 ms (`record`); kept 10 ms: at 14 ms those of 1..=4 expire.
        assert_eq!(records.remove_expired(13, 10), 3);
        assert_eq!(records.remove_expired(14, 10), 1);
        let mut left: Vec<&str> = records.iter().map(|(id, _)| id).collect();
        left.sort();
        assert_eq!(left, vec!["r-5", "r-6"]);
        // A retention too long to add to a time never expires anything.
        assert_eq!(records.remove_expired(u64::MAX - 1, u64::MAX), 0);
        assert_eq!(records.remove_expired(u64::MAX, 0), 2);
        assert!(records.is_empty());
    }

    #[test]
    fn a_replaced_record_expires_by_its_new_time() {
        let mut records = RequestRecords::default();
        let key = RequestKey::of("r-1");
        records.insert(key, "r-1".to_string(), record(1));
        records.insert(key, "r-1".to_string(), record(50));
        records.insert(RequestKey::of("r-2"), "r-2".to_string(), record(2));
        assert_eq!(records.remove_expired(40, 10), 1, "only r-2, at 2 ms");
        assert_eq!(records.get(key), Some(("r-1", &record(50))));
        assert_eq!(records.remove_expired(60, 10), 1);
        assert!(records.is_empty());
        assert_eq!(records.recorded_since_ms, u64::MAX);
    }
}
