//! Rate limits: how many requests one key (a client address, an account, a user) may make
//! in a period, answered with 429, `Retry-After` and the common error shape beyond it.
//!
//! The counts live in the process (GCRA, from `governor`): with several replicas a key
//! gets the limit from each, which is documented with every limit's variable.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Keys kept before the ones that are back to a full allowance are dropped.
const RETAIN_ABOVE: usize = 10_000;

/// A limit of so many requests per key in a period, allowing that many in a burst.
#[derive(Clone)]
pub struct KeyedLimit {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
    message: &'static str,
}

impl KeyedLimit {
    /// `per_minute` of 0 is treated as 1: a limit cannot forbid everything.
    pub fn per_minute(per_minute: u32, message: &'static str) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
            clock: DefaultClock::default(),
            message,
        }
    }

    /// A limit of `per_hour` requests per key, allowing that many in a burst; 0 is 1.
    pub fn per_hour(per_hour: u32, message: &'static str) -> Self {
        let quota = Quota::per_hour(NonZeroU32::new(per_hour).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
            clock: DefaultClock::default(),
            message,
        }
    }

    /// Counts one request of `key`; 429 with when to come back once the limit is used up.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        if self.limiter.len() > RETAIN_ABOVE {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                ApiError::TooManyRequests(self.message.into(), wait.max(Duration::from_secs(1)))
            })
    }
}

/// Who is asking, for per-address limits: the address `trusted_hops` proxies saw, read
/// from the right of `X-Forwarded-For` (each trusted proxy appends the address it was
/// called from; anything to the left of those is the client's to invent), else the peer.
pub fn client_address(parts: &Parts, trusted_hops: usize) -> String {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    forwarded_for(&parts.headers, trusted_hops)
        .or(peer)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

fn forwarded_for(headers: &HeaderMap, trusted_hops: usize) -> Option<IpAddr> {
    if trusted_hops == 0 {
        return None;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    hops.len()
        .checked_sub(trusted_hops)
        .and_then(|index| hops.get(index))
        .and_then(|hop| hop.parse().ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::{Request, StatusCode};

    #[test]
    fn a_key_gets_its_allowance_then_429_with_a_wait_and_others_are_untouched() {
        let limit = KeyedLimit::per_minute(3, "Too many sign-ins");
        for _ in 0..3 {
            limit.check("a").unwrap();
        }
        let refused = limit.check("a").unwrap_err();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait = refused.retry_after().unwrap();
        assert!(
            wait >= Duration::from_secs(1) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        limit.check("b").unwrap();
    }

    #[test]
    fn an_hourly_limit_asks_for_minutes_of_patience() {
        let limit = KeyedLimit::per_hour(2, "Too many resets");
        limit.check("a").unwrap();
        limit.check("a").unwrap();
        let wait = limit.check("a").unwrap_err().retry_after().unwrap();
        assert!(
            wait >= Duration::from_secs(29 * 60) && wait <= Duration::from_secs(30 * 60),
            "{wait:?}"
        );
    }

    fn parts(forwarded: &[&str], peer: Option<[u8; 4]>) -> Parts {
        let mut request = Request::builder();
        for value in forwarded {
            request = request.header("x-forwarded-for", *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        if let Some(ip) = peer {
            parts
                .extensions
                .insert(ConnectInfo(SocketAddr::from((ip, 4000))));
        }
        parts
    }

    #[test]
    fn the_client_is_read_from_the_trusted_end_of_x_forwarded_for() {
        let spoofed = parts(&["6.6.6.6, 1.2.3.4"], Some([10, 0, 0, 1]));
        assert_eq!(client_address(&spoofed, 1), "1.2.3.4");
        assert_eq!(client_address(&spoofed, 2), "6.6.6.6");
        assert_eq!(client_address(&spoofed, 0), "10.0.0.1");
        let split = parts(&["6.6.6.6", "1.2.3.4"], None);
        assert_eq!(client_address(&split, 1), "1.2.3.4");
        // Fewer hops than trusted proxies, or garbage: the peer.
        assert_eq!(
            client_address(&parts(&["1.2.3.4"], Some([10, 0, 0, 1])), 2),
            "10.0.0.1"
        );
        assert_eq!(
            client_address(&parts(&["junk"], Some([10, 0, 0, 1])), 1),
            "10.0.0.1"
        );
        assert_eq!(client_address(&parts(&[], None), 1), "unknown");
    }
}
