//! Tokens this process has already verified, so a session's next requests skip the
//! signature check.
//!
//! An Ed25519 verification costs tens of microseconds, more than everything else on a
//! request like `currentuser`. A token is an immutable string whose signature either
//! holds or not, so the claims of one that verified once can be reused for as long as
//! its expiry allows; the expiry is checked again on every hit. Bounded: shards of at
//! most [`SHARD_CAPACITY`] tokens, and a full shard first drops its expired tokens, then
//! everything (the next requests verify again).
//!
//! Keyed by a number read off the token's signature ([`key`]) rather than by hashing the
//! whole token (SipHash over a 400-byte token, twice a request, showed in `make bench`'s
//! profile). A hit still compares the whole token, so a cached signature under another
//! payload is no hit.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use super::tokens::Claims;

const SHARDS: usize = 16;
const SHARD_CAPACITY: usize = 1024;

pub(super) struct VerifiedTokens {
    shards: [Mutex<Shard>; SHARDS],
}

type Shard = HashMap<u64, Verified, BuildHasherDefault<KeyIsHash>>;

/// A token that verified, and its claims.
struct Verified {
    token: Box<str>,
    claims: Claims,
}

/// The cache key of a token: the first eight characters of its signature (a JWT's last
/// part: the base64url of an Ed25519 signature, which no one without the key can choose),
/// mixed into a well-spread number. Only tokens that verified are stored, so no one can
/// pick keys that crowd a shard; two tokens sharing a key replace each other, and a hit
/// compares the whole token.
fn key(token: &str) -> u64 {
    let signature = token
        .rsplit_once('.')
        .map_or(token, |(_, signature)| signature)
        .as_bytes();
    let mut head = [0u8; 8];
    let len = signature.len().min(head.len());
    head[..len].copy_from_slice(&signature[..len]);
    // splitmix64's finalizer: every input bit moves every output bit.
    let mut z = u64::from_le_bytes(head);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hasher of a map whose `u64` keys are already well-spread hashes ([`key`]).
#[derive(Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else still hashes, if poorly.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl VerifiedTokens {
    pub(super) fn new() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
        }
    }

    /// The claims of `token` if it verified before and has not expired at `now` (seconds
    /// since the epoch, with the verifier's leeway already subtracted).
    pub(super) fn get(&self, token: &str, now: i64) -> Option<Claims> {
        let key = key(token);
        let shard = self.shard(key).lock().ok()?;
        shard
            .get(&key)
            .filter(|hit| &*hit.token == token && hit.claims.exp >= now)
            .map(|hit| hit.claims.clone())
    }

    pub(super) fn insert(&self, token: &str, claims: &Claims, now: i64) {
        let key = key(token);
        let Ok(mut shard) = self.shard(key).lock() else {
            return;
        };
        if shard.len() >= SHARD_CAPACITY {
            shard.retain(|_, hit| hit.claims.exp >= now);
            if shard.len() >= SHARD_CAPACITY {
                shard.clear();
            }
        }
        let entry = Verified {
            token: token.into(),
            claims: claims.clone(),
        };
        shard.insert(key, entry);
    }

    fn shard(&self, key: u64) -> &Mutex<Shard> {
        // The top bits: the map uses the bottom ones for its buckets.
        &self.shards[(key >> 60) as usize % SHARDS]
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
    fn a_cached_signature_under_another_payload_is_no_hit() {
        let cache = VerifiedTokens::new();
        cache.insert("head.payload.signature", &claims(100), 0);
        assert_eq!(cache.get("head.payload.signature", 0), Some(claims(100)));
        assert_eq!(cache.get("head.forged.signature", 0), None);
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
