//! The trail (留痕): an append-only, tamper-evident history any aggregate can keep — a
//! case, a plan, a decision consultation, a solicitation. Pure: the hash chain and its
//! verification; each service stores entries in its own tables, in the transaction of the
//! change they record.
//!
//! The chain is exactly as specified on dispatch's `TrailEntry` (events.proto): lowercase
//! hex SHA-256 of prev_hash, subject id (a case's id in its hyphenated form), sequence,
//! event_type name, event_sequence, actor (canonical JSON), occur_time (RFC 3339, UTC,
//! nanoseconds), before_json and after_json, each followed by a newline; the first
//! prev_hash is [`GENESIS`], 64 zeros. Anyone holding the entries can recompute it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The prev_hash of a subject's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Canonical JSON: keys sorted (serde_json's map is ordered), no insignificant whitespace.
pub fn canonical_json(value: &impl Serialize) -> String {
    // Going through `Value` sorts struct fields too; a failure can only be a non-string
    // map key, which our types never have.
    serde_json::to_value(value).map(|v| v.to_string()).unwrap_or_else(|_| "{}".to_owned())
}

/// One entry's hashed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryContent<'a> {
    /// The previous entry's hash.
    pub prev_hash: &'a str,
    /// The aggregate the trail belongs to (a case id, `plans/…`): whatever the service
    /// fixes, always spelled the same.
    pub subject_id: &'a str,
    /// Per-subject sequence, from 1.
    pub sequence: i64,
    /// `EVENT_TYPE_*` name.
    pub event_type: &'a str,
    /// Global event sequence.
    pub event_sequence: i64,
    /// Canonical JSON of the actor.
    pub actor_json: &'a str,
    /// Server time.
    pub occur_time: DateTime<Utc>,
    /// Canonical JSON before.
    pub before_json: &'a str,
    /// Canonical JSON after.
    pub after_json: &'a str,
}

/// The entry's hash.
pub fn hash(e: &EntryContent<'_>) -> String {
    let mut h = Sha256::new();
    for part in [
        e.prev_hash,
        e.subject_id,
        &e.sequence.to_string(),
        e.event_type,
        &e.event_sequence.to_string(),
        e.actor_json,
        &e.occur_time.to_rfc3339_opts(SecondsFormat::Nanos, true),
        e.before_json,
        e.after_json,
    ] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    hex(&h.finalize())
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored entry, for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Its content.
    pub sequence: i64,
    /// `EVENT_TYPE_*` name.
    pub event_type: String,
    /// Global sequence.
    pub event_sequence: i64,
    /// Actor JSON.
    pub actor_json: String,
    /// Time.
    pub occur_time: DateTime<Utc>,
    /// Before.
    pub before_json: String,
    /// After.
    pub after_json: String,
    /// Recorded prev_hash.
    pub prev_hash: String,
    /// Recorded hash.
    pub hash: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Whether the whole chain holds.
    pub verified: bool,
    /// Entries checked.
    pub entries_checked: i64,
    /// First failing sequence; 0 when verified.
    pub first_broken_sequence: i64,
    /// Why.
    pub reason: String,
    /// The last entry's recorded hash.
    pub head_hash: String,
}

/// Recomputes every hash of `entries` (in sequence order) and checks the chain and the
/// sequence.
pub fn verify(subject_id: &str, entries: &[StoredEntry]) -> Verification {
    let mut prev = GENESIS.to_owned();
    let mut checked = 0;
    for (i, e) in entries.iter().enumerate() {
        checked += 1;
        let fail = |reason: &str| Verification {
            verified: false,
            entries_checked: checked,
            first_broken_sequence: e.sequence,
            reason: reason.to_owned(),
            head_hash: entries.last().map(|l| l.hash.clone()).unwrap_or_default(),
        };
        if e.sequence != i as i64 + 1 {
            return fail("sequence gap");
        }
        if e.prev_hash != prev {
            return fail("prev_hash mismatch");
        }
        let recomputed = hash(&EntryContent {
            prev_hash: &e.prev_hash,
            subject_id,
            sequence: e.sequence,
            event_type: &e.event_type,
            event_sequence: e.event_sequence,
            actor_json: &e.actor_json,
            occur_time: e.occur_time,
            before_json: &e.before_json,
            after_json: &e.after_json,
        });
        if recomputed != e.hash {
            return fail("hash mismatch");
        }
        prev = e.hash.clone();
    }
    Verification {
        verified: true,
        entries_checked: checked,
        first_broken_sequence: 0,
        reason: String::new(),
        head_hash: entries.last().map(|l| l.hash.clone()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed outside Rust from the specification (Python's hashlib).
    const EXPECTED_FIRST_HASH: &str = "670cf22d02360b64c68acbce78c283279f333b2c835f16112347a8e44a86b02e";

    const SUBJECT: &str = "00000000-0000-0000-0000-000000000000";

    fn chain(n: i64) -> (&'static str, Vec<StoredEntry>) {
        let subject_id = SUBJECT;
        let mut prev = GENESIS.to_owned();
        let mut entries = Vec::new();
        for sequence in 1..=n {
            let occur_time = DateTime::from_timestamp(1_800_000_000 + sequence, 123_456_000).unwrap();
            let after = format!(r#"{{"n":{sequence}}}"#);
            let content = EntryContent {
                prev_hash: &prev,
                subject_id,
                sequence,
                event_type: "EVENT_TYPE_CASE_UPDATED",
                event_sequence: sequence * 10,
                actor_json: "{}",
                occur_time,
                before_json: "{}",
                after_json: &after,
            };
            let h = hash(&content);
            entries.push(StoredEntry {
                sequence,
                event_type: "EVENT_TYPE_CASE_UPDATED".into(),
                event_sequence: sequence * 10,
                actor_json: "{}".into(),
                occur_time,
                before_json: "{}".into(),
                after_json: after,
                prev_hash: prev.clone(),
                hash: h.clone(),
            });
            prev = h;
        }
        (subject_id, entries)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (id, entries) = chain(4);
        let v = verify(id, &entries);
        assert!(v.verified, "{v:?}");
        assert_eq!(v.entries_checked, 4);
        assert_eq!(v.head_hash, entries[3].hash);
        assert_eq!(entries[0].prev_hash, GENESIS);
        assert_eq!(entries[0].hash.len(), 64);
    }

    #[test]
    fn the_chain_is_the_one_the_contract_specifies() {
        // sha256 of the nine fields, each followed by a newline, as events.proto states.
        let (_, entries) = chain(1);
        assert_eq!(entries[0].hash, EXPECTED_FIRST_HASH);
    }

    #[test]
    fn an_edited_entry_breaks_the_chain_at_its_sequence() {
        let (id, mut entries) = chain(4);
        entries[2].after_json = r#"{"n":99}"#.into();
        let v = verify(id, &entries);
        assert!(!v.verified);
        assert_eq!((v.first_broken_sequence, v.reason.as_str()), (3, "hash mismatch"));
    }

    #[test]
    fn a_removed_entry_is_a_gap() {
        let (id, mut entries) = chain(4);
        entries.remove(1);
        let v = verify(id, &entries);
        assert_eq!((v.first_broken_sequence, v.reason.as_str()), (3, "sequence gap"));
    }

    #[test]
    fn canonical_json_sorts_keys_without_whitespace() {
        #[derive(Serialize)]
        struct S {
            z: u8,
            a: &'static str,
        }
        assert_eq!(canonical_json(&S { z: 1, a: "x" }), r#"{"a":"x","z":1}"#);
    }
}
