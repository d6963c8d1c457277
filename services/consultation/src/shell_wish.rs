//! What this service needs from the service shell (`/work/wt/SHELL.md`) that was not on
//! `main` when it was written; each item names the shell item it stands for, so that
//! moving onto the shell is deleting it here and changing the `use` lines.
//!
//! - [`trail`]: `minhu_trail` (libs/trail) — the hash chain with the subject id as a string,
//!   exactly dispatch's algorithm.
//! - [`write`]: `minhu_store::write` — replay before the look-ups, look-ups outside the
//!   transaction, then claim + body + stored result in one transaction.

use std::future::Future;

use minhu_store::{Idempotency, Replay, StoreError, TxFuture};
use sqlx::{PgConnection, PgPool};

/// The write path: a stored first result for `key` is returned before `lookups` runs (a
/// retry during a roster outage still gets its first answer); then `lookups` (no
/// transaction, no lock); then `body` in a transaction that claims the key and stores the
/// result with the effect.
pub async fn write<L, M, E, F>(
    pool: &PgPool,
    key: &Idempotency,
    lookups: impl Future<Output = Result<L, E>>,
    body: F,
) -> Result<M, E>
where
    M: prost::Message + Default,
    E: From<StoreError>,
    F: for<'c> FnOnce(&'c mut PgConnection, L) -> TxFuture<'c, M, E>,
{
    if key.is_enabled() {
        let mut tx = pool.begin().await.map_err(StoreError::from)?;
        if let Replay::Stored(first) = key.claim::<M>(&mut tx).await? {
            return Ok(first);
        }
        // Only a peek: the claim is made again, for real, in the write's own transaction.
        tx.rollback().await.map_err(StoreError::from)?;
    }
    let looked_up = lookups.await?;
    key.run(pool, move |tx| body(tx, looked_up)).await
}

/// The hash-chained trail (留痕), as `minhu_trail` will provide it.
pub mod trail {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::Serialize;
    use sha2::{Digest as _, Sha256};

    /// The prev_hash of a subject's first entry.
    pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    /// Canonical JSON: keys sorted, no insignificant whitespace.
    pub fn canonical_json(value: &impl Serialize) -> String {
        serde_json::to_value(value).map(|v| v.to_string()).unwrap_or_else(|_| "{}".to_owned())
    }

    /// One entry's hashed content.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct EntryContent<'a> {
        /// The previous entry's hash.
        pub prev_hash: &'a str,
        /// The plan or decision.
        pub subject_id: &'a str,
        /// Per-subject sequence, from 1.
        pub sequence: i64,
        /// Event type name.
        pub event_type: &'a str,
        /// Feed sequence.
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

    /// The entry's hash: lowercase hex SHA-256 of every part, each followed by a newline.
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
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A stored entry.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct StoredEntry {
        /// Per-subject sequence.
        pub sequence: i64,
        /// Event type name.
        pub event_type: String,
        /// Feed sequence.
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

    /// Recomputes every hash of `entries` (in sequence order) and checks chain and sequence.
    pub fn verify(subject_id: &str, entries: &[StoredEntry]) -> Verification {
        let head_hash = entries.last().map(|l| l.hash.clone()).unwrap_or_default();
        let mut prev = GENESIS.to_owned();
        for (i, e) in entries.iter().enumerate() {
            let fail = |reason: &str| Verification {
                verified: false,
                entries_checked: i as i64 + 1,
                first_broken_sequence: e.sequence,
                reason: reason.to_owned(),
                head_hash: head_hash.clone(),
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
            entries_checked: entries.len() as i64,
            first_broken_sequence: 0,
            reason: String::new(),
            head_hash,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn chain(n: i64) -> Vec<StoredEntry> {
            let mut prev = GENESIS.to_owned();
            (1..=n)
                .map(|sequence| {
                    let occur_time = DateTime::from_timestamp(1_800_000_000 + sequence, 0).unwrap();
                    let after = format!(r#"{{"n":{sequence}}}"#);
                    let hash = hash(&EntryContent {
                        prev_hash: &prev,
                        subject_id: "d",
                        sequence,
                        event_type: "X",
                        event_sequence: sequence,
                        actor_json: "{}",
                        occur_time,
                        before_json: "{}",
                        after_json: &after,
                    });
                    let e = StoredEntry {
                        sequence,
                        event_type: "X".into(),
                        event_sequence: sequence,
                        actor_json: "{}".into(),
                        occur_time,
                        before_json: "{}".into(),
                        after_json: after,
                        prev_hash: prev.clone(),
                        hash: hash.clone(),
                    };
                    prev = hash;
                    e
                })
                .collect()
        }

        #[test]
        fn an_intact_chain_verifies_and_an_edited_entry_breaks_it_at_its_sequence() {
            let mut entries = chain(3);
            assert!(verify("d", &entries).verified);
            assert!(!verify("e", &entries).verified, "the subject is part of the hash");
            entries[1].after_json = r#"{"n":9}"#.into();
            let v = verify("d", &entries);
            assert_eq!((v.verified, v.first_broken_sequence, v.reason.as_str()), (false, 2, "hash mismatch"));
        }
    }
}
