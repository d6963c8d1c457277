//! `request_id` idempotency (AIP-155): the first result of a mutating request is stored in
//! the same transaction as its effect, so a retry — after a timeout, a crash, a dropped
//! connection — returns that result and changes nothing.
//!
//! Usage in a handler:
//!
//! ```ignore
//! let key = Idempotency::new(METHOD, &request.request_id, Fingerprint::of(&principal.subject, &request));
//! let case = key.run(&pool, move |tx| Box::pin(async move { store::insert_case(tx, &new_case).await })).await?;
//! ```
//!
//! or, when the transaction must do more, [`Idempotency::claim`] and
//! [`Idempotency::complete`] by hand around the effect.
//!
//! Two concurrent requests with one id serialise on the record's primary key: the second
//! waits for the first to commit, then replays its result (or, if the first rolled back,
//! goes ahead itself).

use std::{future::Future, pin::Pin};

use sha2::{Digest as _, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::StoreError;

/// What a request is, for telling a retry from a reuse of its id with something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// sha256 of the caller and the encoded request. Bound to the caller so that nobody can
    /// read another's result by replaying their request id.
    pub fn of(caller: &str, request: &impl prost::Message) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(caller.as_bytes());
        hasher.update([0]);
        hasher.update(request.encode_to_vec());
        Self(hasher.finalize().into())
    }
}

/// The outcome of [`Idempotency::claim`].
#[derive(Debug)]
pub enum Replay<M> {
    /// First time: go ahead, then [`Idempotency::complete`].
    Proceed,
    /// A retry: here is the first result; do nothing else.
    Stored(M),
}

/// Encrypts stored first results, for services whose responses carry personal data (the
/// reporter's contact in dispatch's): nothing readable at rest outside the sealed columns.
/// `context` (the record's scope and request id) is bound as associated data, so a sealed
/// response cannot be moved to another record.
pub trait Seal: Send + Sync + std::fmt::Debug {
    /// `plain` sealed.
    fn seal(&self, context: &[u8], plain: &[u8]) -> Vec<u8>;
    /// The plain bytes, or `None` when `sealed` was not sealed with this key and context.
    fn open(&self, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>>;
}

/// One request's idempotency key.
#[derive(Debug, Clone)]
pub struct Idempotency {
    scope: String,
    request_id: String,
    fingerprint: Fingerprint,
    seal: Option<std::sync::Arc<dyn Seal>>,
}

impl Idempotency {
    /// The key of a request to `scope` (the RPC's full name). An empty `request_id` means
    /// the caller opted out: every call proceeds.
    pub fn new(scope: impl Into<String>, request_id: &str, fingerprint: Fingerprint) -> Self {
        Self { scope: scope.into(), request_id: request_id.trim().to_owned(), fingerprint, seal: None }
    }

    /// The stored first result is sealed with `seal` (and opened with it on a replay).
    pub fn sealed(mut self, seal: std::sync::Arc<dyn Seal>) -> Self {
        self.seal = Some(seal);
        self
    }

    fn context(&self) -> Vec<u8> {
        [self.scope.as_bytes(), b"\n", self.request_id.as_bytes()].concat()
    }

    fn decode<M: prost::Message + Default>(&self, stored: &[u8]) -> Result<M, StoreError> {
        match &self.seal {
            None => decode(stored),
            Some(seal) => {
                let plain = seal.open(&self.context(), stored).ok_or_else(|| {
                    StoreError::Database(sqlx::Error::Protocol(
                        "a stored first result does not open with this key".into(),
                    ))
                })?;
                decode(&plain)
            }
        }
    }

    /// The key of a call to `rpc` (`package.Service/Method`) by `caller`, after checking the
    /// `request_id` itself: at most 128 characters ([`StoreError::RequestIdTooLong`]).
    pub fn for_rpc(
        rpc: impl Into<String>,
        caller: &str,
        request_id: &str,
        request: &impl prost::Message,
    ) -> Result<Self, StoreError> {
        let length = request_id.chars().count();
        if length > 128 {
            return Err(StoreError::RequestIdTooLong(length));
        }
        Ok(Self::new(rpc, request_id, Fingerprint::of(caller, request)))
    }

    /// The stored first result of this key, if its request has committed; claims nothing
    /// and locks nothing, so it can run before the external look-ups of a write (a retry
    /// during a dependency's outage still gets its answer). A request id reused for a
    /// different request is [`StoreError::RequestIdReused`] here already.
    pub async fn replay<M: prost::Message + Default>(&self, pool: &PgPool) -> Result<Option<M>, StoreError> {
        if !self.is_enabled() {
            return Ok(None);
        }
        let row: Option<(Vec<u8>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT fingerprint, response FROM minhu_idempotency_records WHERE scope = $1 AND request_id = $2",
        )
        .bind(&self.scope)
        .bind(&self.request_id)
        .fetch_optional(pool)
        .await?;
        match row {
            None => Ok(None),
            Some((fingerprint, _)) if fingerprint != self.fingerprint.0 => {
                Err(StoreError::RequestIdReused(self.request_id.clone()))
            }
            Some((_, response)) => response.map(|bytes| self.decode(&bytes)).transpose(),
        }
    }

    /// Whether the caller sent a request id.
    pub fn is_enabled(&self) -> bool {
        !self.request_id.is_empty()
    }

    /// Claims the key in `tx`, or returns the stored first result.
    pub async fn claim<M: prost::Message + Default>(&self, tx: &mut PgConnection) -> Result<Replay<M>, StoreError> {
        if !self.is_enabled() {
            return Ok(Replay::Proceed);
        }
        let inserted = sqlx::query(
            "INSERT INTO minhu_idempotency_records (scope, request_id, fingerprint) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, request_id) DO NOTHING",
        )
        .bind(&self.scope)
        .bind(&self.request_id)
        .bind(&self.fingerprint.0[..])
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Replay::Proceed);
        }
        let (fingerprint, response): (Vec<u8>, Option<Vec<u8>>) = sqlx::query_as(
            "SELECT fingerprint, response FROM minhu_idempotency_records WHERE scope = $1 AND request_id = $2",
        )
        .bind(&self.scope)
        .bind(&self.request_id)
        .fetch_one(&mut *tx)
        .await?;
        if fingerprint != self.fingerprint.0 {
            return Err(StoreError::RequestIdReused(self.request_id.clone()));
        }
        let response = response.ok_or_else(|| {
            // Only a committed claim is visible, and it always has its response.
            StoreError::Database(sqlx::Error::Protocol("idempotency record without a response".into()))
        })?;
        Ok(Replay::Stored(self.decode(&response)?))
    }

    /// Stores the result of the claimed request, in the same transaction as its effect.
    pub async fn complete(&self, tx: &mut PgConnection, response: &impl prost::Message) -> Result<(), StoreError> {
        if !self.is_enabled() {
            return Ok(());
        }
        let encoded = response.encode_to_vec();
        let stored = match &self.seal {
            None => encoded,
            Some(seal) => seal.seal(&self.context(), &encoded),
        };
        sqlx::query("UPDATE minhu_idempotency_records SET response = $3 WHERE scope = $1 AND request_id = $2")
            .bind(&self.scope)
            .bind(&self.request_id)
            .bind(stored)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
}

/// The future a write closure returns: borrows the transaction's connection for `'c`.
pub type TxFuture<'c, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>;

impl Idempotency {
    /// Runs `write` in a new transaction guarded by this key: a retry returns the stored
    /// first result without running `write`; otherwise the result is stored and committed
    /// with `write`'s effect, or nothing is (an error rolls everything back).
    pub async fn run<M, E, F>(&self, pool: &PgPool, write: F) -> Result<M, E>
    where
        M: prost::Message + Default,
        E: From<StoreError>,
        F: for<'c> FnOnce(&'c mut PgConnection) -> TxFuture<'c, M, E>,
    {
        let mut tx = pool.begin().await.map_err(StoreError::from)?;
        if let Replay::Stored(first) = self.claim::<M>(&mut tx).await? {
            return Ok(first);
        }
        let result = write(&mut tx).await?;
        self.complete(&mut tx, &result).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(result)
    }
}

/// How long first results are kept by default: longer than any client's retry window
/// (the contracts promise a day), short enough that they do not accumulate.
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(48 * 3600);

/// Purges records older than `max_age` every `every` until `stop` completes: retention
/// enforced, not only possible. A failed turn is logged and retried at the next.
pub async fn keep_for(
    pool: sqlx::PgPool,
    max_age: std::time::Duration,
    every: std::time::Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {}
        }
        match purge_older_than(&pool, max_age).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, ?max_age, "purged idempotency records past their retention"),
            Err(error) => tracing::warn!(%error, "purging idempotency records"),
        }
    }
}

/// Deletes records older than `max_age`: a retry that late is a new request.
pub async fn purge_older_than(pool: &sqlx::PgPool, max_age: std::time::Duration) -> Result<u64, StoreError> {
    let seconds = max_age.as_secs_f64();
    let result =
        sqlx::query("DELETE FROM minhu_idempotency_records WHERE created_at < now() - make_interval(secs => $1)")
            .bind(seconds)
            .execute(pool)
            .await?;
    Ok(result.rows_affected())
}
