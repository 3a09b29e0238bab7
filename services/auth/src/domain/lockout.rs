//! Locking an email's sign-in after repeated failures, decided without I/O.
//!
//! The record is kept per email whether or not an account has it, so the answers (and
//! their timing) never tell an attacker which emails exist.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failures {
    /// The email, lower-cased.
    #[serde(rename = "_id")]
    pub email: String,
    /// Failures since `window_start`.
    pub count: i64,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub window_start: DateTime<Utc>,
    #[serde(default, with = "optional_time")]
    pub locked_until: Option<DateTime<Utc>>,
    /// Locks so far: each lasts twice the one before.
    pub locks: u32,
    pub version: i64,
}

/// The rule: `max` failures within `window` lock sign-in for `window`, doubling per lock.
#[derive(Debug, Clone, Copy)]
pub struct LockRule {
    pub max: i64,
    pub window: std::time::Duration,
}

impl Failures {
    pub fn new(email: &str, now: DateTime<Utc>) -> Self {
        Self {
            email: email.to_owned(),
            count: 0,
            window_start: now,
            locked_until: None,
            locks: 0,
            version: 0,
        }
    }

    /// How long sign-in stays locked, if it is.
    pub fn locked_for(&self, now: DateTime<Utc>) -> Option<std::time::Duration> {
        self.locked_until
            .and_then(|until| (until - now).to_std().ok())
            .filter(|left| !left.is_zero())
    }

    /// The record after one more failure at `now`.
    pub fn after_failure(&self, now: DateTime<Utc>, rule: LockRule) -> Self {
        let window = chrono::Duration::from_std(rule.window).unwrap_or(chrono::Duration::MAX);
        let mut next = self.clone();
        next.version += 1;
        if now - self.window_start > window {
            next.count = 0;
            next.window_start = now;
        }
        next.count += 1;
        if next.count >= rule.max {
            let lock = window * 2i32.saturating_pow(self.locks.min(10));
            next.locked_until = Some(now + lock);
            next.locks = self.locks.saturating_add(1);
            next.count = 0;
            next.window_start = now;
        }
        next
    }
}

mod optional_time {
    use bson::serde_helpers::chrono_datetime_as_bson_datetime as as_bson;
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(time) => as_bson::serialize(time, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<bson::DateTime>::deserialize(d)?.map(bson::DateTime::to_chrono))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const RULE: LockRule = LockRule {
        max: 3,
        window: Duration::from_secs(600),
    };

    fn fail(mut record: Failures, times: usize, now: DateTime<Utc>) -> Failures {
        for _ in 0..times {
            record = record.after_failure(now, RULE);
        }
        record
    }

    #[test]
    fn the_maximum_within_the_window_locks_for_the_window_then_twice_as_long() {
        let now = Utc::now();
        let record = fail(Failures::new("a@b.co", now), 2, now);
        assert_eq!(record.locked_for(now), None);
        let locked = fail(record, 1, now);
        assert_eq!(locked.locked_for(now), Some(Duration::from_secs(600)));
        assert_eq!(
            locked.locked_for(now + chrono::Duration::seconds(601)),
            None
        );
        let later = now + chrono::Duration::seconds(601);
        let again = fail(locked, 3, later);
        assert_eq!(again.locked_for(later), Some(Duration::from_secs(1200)));
        assert_eq!(again.version, 6);
    }

    #[test]
    fn failures_spread_beyond_the_window_never_lock() {
        let mut now = Utc::now();
        let mut record = Failures::new("a@b.co", now);
        for _ in 0..10 {
            record = record.after_failure(now, RULE);
            now += chrono::Duration::seconds(400);
            record = record.after_failure(now, RULE);
            now += chrono::Duration::seconds(601);
            assert_eq!(record.locked_for(now), None);
        }
    }
}
