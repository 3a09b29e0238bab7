//! Locking an email's sign-in after repeated failures: the record and the rule.
//!
//! The record is kept per email whether or not an account has it, so the answers (and
//! their timing) never tell an attacker which emails exist.

use std::time::Duration;

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
}

/// The rule: `max` failures within `window` lock sign-in for `window`, doubling per lock.
#[derive(Debug, Clone, Copy)]
pub struct LockRule {
    pub max: i64,
    pub window: Duration,
}

impl LockRule {
    /// How long the lock after `locks` earlier ones lasts.
    pub fn lock_after(&self, locks: u32) -> Duration {
        self.window
            .saturating_mul(2u32.saturating_pow(locks.min(10)))
    }

    /// Whether this record, just counted, calls for a lock now.
    pub fn should_lock(&self, record: &Failures, now: DateTime<Utc>) -> bool {
        record.count >= self.max && record.locked_for(now).is_none()
    }
}

impl Failures {
    pub fn new(email: &str, now: DateTime<Utc>) -> Self {
        Self {
            email: email.to_owned(),
            count: 0,
            window_start: now,
            locked_until: None,
            locks: 0,
        }
    }

    /// How long sign-in stays locked, if it is.
    pub fn locked_for(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.locked_until
            .and_then(|until| (until - now).to_std().ok())
            .filter(|left| !left.is_zero())
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

    const RULE: LockRule = LockRule {
        max: 3,
        window: Duration::from_secs(600),
    };

    #[test]
    fn each_lock_lasts_twice_the_one_before_up_to_a_bound() {
        assert_eq!(RULE.lock_after(0), Duration::from_secs(600));
        assert_eq!(RULE.lock_after(1), Duration::from_secs(1200));
        assert_eq!(RULE.lock_after(50), RULE.lock_after(10));
    }

    #[test]
    fn the_maximum_locks_unless_a_lock_is_in_force() {
        let now = Utc::now();
        let mut record = Failures::new("a@b.co", now);
        record.count = 2;
        assert!(!RULE.should_lock(&record, now));
        record.count = 3;
        assert!(RULE.should_lock(&record, now));
        record.locked_until = Some(now + chrono::Duration::seconds(10));
        assert_eq!(record.locked_for(now), Some(Duration::from_secs(10)));
        assert!(!RULE.should_lock(&record, now));
        let later = now + chrono::Duration::seconds(11);
        assert_eq!(record.locked_for(later), None);
        assert!(RULE.should_lock(&record, later));
    }
}
