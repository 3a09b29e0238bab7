//! Tokens this process has already verified, so a session's next requests skip the
//! signature check.
//!
//! An Ed25519 verification costs tens of microseconds, more than everything else on a
//! request like `currentuser`. A token is an immutable string whose signature either
//! holds or not, so the claims of one that verified once can be reused for as long as
//! its expiry allows; the expiry is checked again on every hit. Bounded: shards of at
//! most [`SHARD_CAPACITY`] tokens, and a full shard first drops its expired tokens, then
//! everything (the next requests verify again).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use super::tokens::Claims;

const SHARDS: usize = 16;
const SHARD_CAPACITY: usize = 1024;

pub(super) struct VerifiedTokens {
    hasher: RandomState,
    shards: [Mutex<HashMap<Box<str>, Claims>>; SHARDS],
}

impl VerifiedTokens {
    pub(super) fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }

    /// The claims of `token` if it verified before and has not expired at `now` (seconds
    /// since the epoch, with the verifier's leeway already subtracted).
    pub(super) fn get(&self, token: &str, now: i64) -> Option<Claims> {
        let shard = self.shard(token).lock().ok()?;
        shard.get(token).filter(|claims| claims.exp >= now).cloned()
    }

    pub(super) fn insert(&self, token: &str, claims: &Claims, now: i64) {
        let Ok(mut shard) = self.shard(token).lock() else {
            return;
        };
        if shard.len() >= SHARD_CAPACITY {
            shard.retain(|_, claims| claims.exp >= now);
            if shard.len() >= SHARD_CAPACITY {
                shard.clear();
            }
        }
        shard.insert(token.into(), claims.clone());
    }

    fn shard(&self, token: &str) -> &Mutex<HashMap<Box<str>, Claims>> {
        let index = self.hasher.hash_one(token) as usize % SHARDS;
        &self.shards[index]
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().map_or(0, |shard| shard.len()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            id: "u1".into(),
            email: "a@b.c".into(),
            iat: 0,
            exp,
            sid: None,
        }
    }

    #[test]
    fn a_token_is_reused_until_it_expires() {
        let cache = VerifiedTokens::new();
        cache.insert("t", &claims(100), 0);
        assert_eq!(cache.get("t", 100), Some(claims(100)));
        assert_eq!(cache.get("t", 101), None);
        assert_eq!(cache.get("other", 0), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = VerifiedTokens::new();
        for i in 0..SHARDS * SHARD_CAPACITY * 3 {
            cache.insert(&format!("token-{i}"), &claims(100), 0);
        }
        assert!(cache.len() <= SHARDS * SHARD_CAPACITY);
        // Expired tokens make room first; live ones stay.
        let cache = VerifiedTokens::new();
        for i in 0..SHARDS * SHARD_CAPACITY * 2 {
            let exp = if i % 2 == 0 { 10 } else { 100 };
            cache.insert(&format!("token-{i}"), &claims(exp), 50);
        }
        assert!(cache.len() <= SHARDS * SHARD_CAPACITY);
        assert!(cache.len() > 0);
    }
}
