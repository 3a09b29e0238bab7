//! The schedule in Redis: one sorted set, member = order id, score = due time in
//! milliseconds since the epoch.
//!
//! A worker claims due jobs atomically (a Lua script) by moving their score to the end of
//! a lease. It deletes a job once `expiration.complete` is stored in the stream; if it dies
//! first, the lease runs out, the job is due again and another worker takes it. Several
//! replicas may run: a job is claimed by one at a time, and the event id derived from the
//! order id makes a second publish a no-op.

use std::time::Duration;

use anyhow::Context as _;
use common::redis::RedisConfig;
use redis::aio::ConnectionManager;

/// Claims up to ARGV[3] jobs due at ARGV[1], leasing them until ARGV[2].
const CLAIM: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local claimed = {}
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], due[i])
  table.insert(claimed, due[i])
  table.insert(claimed, due[i + 1])
end
return claimed
";

/// Deletes a job only if it still carries the lease its worker claimed it with.
const COMPLETE: &str = r"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
";

/// A claimed job: the order, when it was due, and the lease it is held under.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub order_id: String,
    pub due_ms: i64,
    pub lease_until_ms: i64,
}

#[derive(Clone)]
pub struct Schedule {
    redis: ConnectionManager,
    key: String,
    claim: redis::Script,
    complete: redis::Script,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Schedule {
    pub async fn connect(redis: &RedisConfig, prefix: &str) -> anyhow::Result<Self> {
        let client = redis.client()?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)));
        let redis = ConnectionManager::new_with_config(client, config)
            .await
            .with_context(|| format!("connecting to Redis at {}", redis.redacted_url()))?;
        Ok(Self {
            redis,
            key: format!("{prefix}:due"),
            claim: redis::Script::new(CLAIM),
            complete: redis::Script::new(COMPLETE),
        })
    }

    /// Schedules an order's expiry; a job already there (a redelivery) is left as it is.
    pub async fn add(&self, order_id: &str, due_ms: i64) -> redis::RedisResult<()> {
        redis::cmd("ZADD")
            .arg(&self.key)
            .arg("NX")
            .arg(due_ms)
            .arg(order_id)
            .query_async::<i64>(&mut self.redis.clone())
            .await
            .map(|_| ())
    }

    /// Drops an order's job (paid or cancelled): nothing needless is fired.
    pub async fn remove(&self, order_id: &str) -> redis::RedisResult<()> {
        redis::cmd("ZREM")
            .arg(&self.key)
            .arg(order_id)
            .query_async::<i64>(&mut self.redis.clone())
            .await
            .map(|_| ())
    }

    pub async fn claim_due(
        &self,
        now_ms: i64,
        lease: Duration,
        limit: usize,
    ) -> redis::RedisResult<Vec<Claimed>> {
        let lease_until_ms = now_ms + lease.as_millis() as i64;
        let flat: Vec<String> = self
            .claim
            .key(&self.key)
            .arg(now_ms)
            .arg(lease_until_ms)
            .arg(limit)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(flat
            .chunks_exact(2)
            .map(|pair| Claimed {
                order_id: pair[0].clone(),
                due_ms: pair[1].parse::<f64>().unwrap_or_default() as i64,
                lease_until_ms,
            })
            .collect())
    }

    pub async fn complete(&self, job: &Claimed) -> redis::RedisResult<()> {
        self.complete
            .key(&self.key)
            .arg(&job.order_id)
            .arg(job.lease_until_ms)
            .invoke_async::<i64>(&mut self.redis.clone())
            .await
            .map(|_| ())
    }

    /// When the earliest job is due, if any.
    pub async fn next_due_ms(&self) -> redis::RedisResult<Option<i64>> {
        let first: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(&self.key)
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(first.first().map(|(_, score)| *score as i64))
    }

    /// The score of one job, for tests and diagnostics.
    pub async fn due_ms(&self, order_id: &str) -> redis::RedisResult<Option<i64>> {
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(&self.key)
            .arg(order_id)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(score.map(|s| s as i64))
    }

    pub async fn ping(&self) -> Result<(), String> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.redis.clone())
            .await
            .map(|_| ())
            .map_err(|e| format!("redis: {e}"))
    }
}
