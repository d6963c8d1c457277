//! The write path every mutating RPC takes, in this order:
//!
//! | step | what | why here |
//! |---|---|---|
//! | 1 | [`Idempotency::replay`]: a committed first result is returned | before any external call: a retry during a dependency's outage still gets its answer |
//! | 2 | the caller's `lookups` (other services, files) | outside any transaction: no row lock waits on the network |
//! | 3 | BEGIN; [`Idempotency::claim`] | a concurrent first request with the same id is waited for here and its result returned |
//! | 4 | the caller's `body`: lock rows in the service's one fixed order, decide, write rows, journal, stage deadlines; the service takes its feed counter last | one transaction: the change, its trail and its events commit together or not at all |
//! | 5 | the response stored with the key; COMMIT | the first result is what every retry sees |
//!
//! What happens after the commit (indexing staged deadlines in Redis) is the caller's: it
//! may only happen when the commit did.

use std::future::Future;

use sqlx::{PgConnection, PgPool};

use crate::{Idempotency, StoreError, TxFuture, idempotency::Replay};

/// Runs one mutating request through the write path (see the module docs): `lookups` only
/// when the request is not a replay, `body` in the transaction that also stores its result
/// under `key`.
pub async fn write<M, E, L, LF, F>(pool: &PgPool, key: &Idempotency, lookups: LF, body: F) -> Result<M, E>
where
    M: prost::Message + Default,
    E: From<StoreError>,
    LF: Future<Output = Result<L, E>>,
    F: for<'c> FnOnce(&'c mut PgConnection, L) -> TxFuture<'c, M, E>,
{
    if let Some(first) = key.replay::<M>(pool).await? {
        return Ok(first);
    }
    let looked_up = lookups.await?;
    let mut tx = pool.begin().await.map_err(StoreError::from)?;
    if let Replay::Stored(first) = key.claim::<M>(&mut tx).await? {
        return Ok(first);
    }
    let result = body(&mut tx, looked_up).await?;
    key.complete(&mut tx, &result).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(result)
}
