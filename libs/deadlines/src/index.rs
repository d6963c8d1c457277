//! The Redis index: two sorted sets under one namespace.
//!
//! - `<namespace>due`: member = deadline id, score = due time (unix millis). What fires next.
//! - `<namespace>inflight`: member = deadline id, score = lease expiry (unix millis). What a
//!   firer has claimed and not yet finished.
//!
//! - `<namespace>rebuilt`: a marker set when a rebuild from Postgres starts. Every claim
//!   reports whether it still exists; if not, Redis lost data (flushed, restarted without
//!   persistence, failed over to an empty replica) and a running engine rebuilds at once
//!   instead of at its next periodic reconcile.
//!
//! Every move between the two sets is one Lua script, so concurrent replicas never see an id
//! in neither or both by their own doing. Both keys live in one script call, so on Redis
//! Cluster the namespace needs a hash tag (`minhu:{dispatch-deadlines}:`).

use std::sync::LazyLock;

use redis::{Script, aio::ConnectionManager};
use uuid::Uuid;

use crate::DeadlineError;

/// The most ids one claim script moves. Redis's Lua `unpack` tops out near 8000 values,
/// and the claim unpacks two per id.
pub(crate) const MAX_CLAIM_BATCH: usize = 2000;

/// Entries per restore script: long enough to amortise the round trip, short enough that
/// the script never blocks the server for more than a couple of milliseconds.
const RESTORE_CHUNK: usize = 1000;

/// Returns expired leases to `due` (their firer died or stalled), then moves up to
/// ARGV[3] due ids from `due` to `inflight` with lease expiry ARGV[2].
/// Returns `{claimed ids, number of expired leases returned, whether the marker exists}`.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], ARGV[1], id)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
if #ids > 0 then
  redis.call('ZREM', KEYS[1], unpack(ids))
  local leased = {}
  for i, id in ipairs(ids) do
    leased[2 * i - 1] = ARGV[2]
    leased[2 * i] = id
  end
  redis.call('ZADD', KEYS[2], unpack(leased))
end
return {ids, #expired, redis.call('EXISTS', KEYS[3])}
",
    )
});

/// ARGV = score, id, score, id, …: moves each id from `inflight` back to `due` at its score
/// (a failed attempt's retry time, or the true due time of one claimed too early).
static REQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, #ARGV, 2 do
  redis.call('ZREM', KEYS[2], ARGV[i + 1])
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
",
    )
});

/// ARGV = score, id, …: the rebuild from Postgres. Skips ids under a lease (their firer
/// owns them; if it died, the lease expires and the claim returns them), and only ever
/// moves a score *earlier* (`LT`): an early score is harmless — the firing re-check puts it
/// back at its true time — while a late one would fire late. Returns how many entries were
/// added or moved.
static RESTORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local changed = 0
for i = 1, #ARGV, 2 do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i + 1]) then
    changed = changed + redis.call('ZADD', KEYS[1], 'LT', 'CH', ARGV[i], ARGV[i + 1])
  end
end
return changed
",
    )
});

/// The two sorted sets of one namespace.
#[derive(Clone)]
pub(crate) struct Index {
    redis: ConnectionManager,
    pub(crate) due: String,
    pub(crate) inflight: String,
    marker: String,
}

/// What one claim returned.
pub(crate) struct Claim {
    pub(crate) ids: Vec<Uuid>,
    /// Leases that had expired and were returned to `due`.
    pub(crate) expired: usize,
    /// The rebuild marker is gone: the index lost data.
    pub(crate) lost: bool,
}

impl Index {
    pub(crate) fn new(redis: ConnectionManager, namespace: &str) -> Self {
        Self {
            redis,
            due: format!("{namespace}due"),
            inflight: format!("{namespace}inflight"),
            marker: format!("{namespace}rebuilt"),
        }
    }

    /// Claims up to `limit` ids due at `now`, leased until `lease_until` (both unix millis).
    pub(crate) async fn claim(&self, now: i64, lease_until: i64, limit: usize) -> Result<Claim, DeadlineError> {
        let mut redis = self.redis.clone();
        let (ids, expired, marker): (Vec<String>, usize, u8) = CLAIM
            .key(&self.due)
            .key(&self.inflight)
            .key(&self.marker)
            .arg(now)
            .arg(lease_until)
            .arg(limit.min(MAX_CLAIM_BATCH))
            .invoke_async(&mut redis)
            .await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            match Uuid::parse_str(&id) {
                Ok(id) => claimed.push(id),
                Err(_) => {
                    // Not ours (someone wrote into the namespace): drop it from the lease set.
                    tracing::warn!(member = %id, "deadline index held a member that is not a deadline id");
                    self.release(&[id]).await?;
                }
            }
        }
        Ok(Claim { ids: claimed, expired, lost: marker == 0 })
    }

    /// Marks the start of a rebuild (see the module docs).
    pub(crate) async fn mark_rebuilt(&self, at: &str) -> Result<(), DeadlineError> {
        let mut redis = self.redis.clone();
        redis::cmd("SET").arg(&self.marker).arg(at).exec_async(&mut redis).await?;
        Ok(())
    }

    /// Ends the leases of finished ids.
    pub(crate) async fn release(&self, ids: &[String]) -> Result<(), DeadlineError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut redis = self.redis.clone();
        redis::cmd("ZREM").arg(&self.inflight).arg(ids).exec_async(&mut redis).await?;
        Ok(())
    }

    /// Moves leased ids back to `due` at the given scores.
    pub(crate) async fn requeue(&self, entries: &[(i64, String)]) -> Result<(), DeadlineError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut redis = self.redis.clone();
        let mut invocation = REQUEUE.key(&self.due);
        invocation.key(&self.inflight);
        for (score, id) in entries {
            invocation.arg(score).arg(id);
        }
        invocation.invoke_async::<i64>(&mut redis).await?;
        Ok(())
    }

    /// Rebuild step: see [`RESTORE`]. Returns how many entries were added or moved earlier.
    pub(crate) async fn restore(&self, entries: &[(i64, Uuid)]) -> Result<usize, DeadlineError> {
        let mut redis = self.redis.clone();
        let mut changed = 0;
        for chunk in entries.chunks(RESTORE_CHUNK) {
            let mut invocation = RESTORE.key(&self.due);
            invocation.key(&self.inflight);
            for (score, id) in chunk {
                invocation.arg(score).arg(id.to_string());
            }
            changed += invocation.invoke_async::<usize>(&mut redis).await?;
        }
        Ok(changed)
    }

    /// Sets the scores of pending ids and removes the others from both sets, in one
    /// round trip.
    pub(crate) async fn put(&self, pending: &[(i64, Uuid)], gone: &[Uuid]) -> Result<(), DeadlineError> {
        if pending.is_empty() && gone.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        if !pending.is_empty() {
            let cmd = pipe.cmd("ZADD").arg(&self.due);
            for (score, id) in pending {
                cmd.arg(score).arg(id.to_string());
            }
            cmd.ignore();
        }
        if !gone.is_empty() {
            let gone: Vec<String> = gone.iter().map(Uuid::to_string).collect();
            pipe.cmd("ZREM").arg(&self.due).arg(&gone).ignore();
            pipe.cmd("ZREM").arg(&self.inflight).arg(&gone).ignore();
        }
        let mut redis = self.redis.clone();
        pipe.exec_async(&mut redis).await?;
        Ok(())
    }

    /// The earliest due score, if anything is indexed.
    pub(crate) async fn next_due(&self) -> Result<Option<i64>, DeadlineError> {
        let mut redis = self.redis.clone();
        let first: Vec<(String, f64)> =
            redis::cmd("ZRANGE").arg(&self.due).arg(0).arg(0).arg("WITHSCORES").query_async(&mut redis).await?;
        // Scores are whole milliseconds, exactly representable in an f64.
        Ok(first.first().map(|(_, score)| *score as i64))
    }
}
