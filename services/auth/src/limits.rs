//! The limits that keep auth alive under load and slow down guessing: per-address rates of
//! sign-in and sign-up, per-address and per-email rates of password-reset requests, a lock
//! on an email after repeated failures, and a bound on concurrent password hashing (in
//! `domain::password`).

use std::time::Duration;

use common::config::{ConfigError, Env};
use common::limits::KeyedLimit;

/// Every limit, from the environment (documented in `infra/service-env.tsv`).
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// `HASH_CONCURRENCY`: hashes computed at once (default: the number of cores).
    pub hash_concurrency: usize,
    /// `HASH_QUEUE`: requests waiting for a hash before 503 with `Retry-After`.
    pub hash_queue: usize,
    /// `SIGNIN_PER_MINUTE` per client address.
    pub signin_per_minute: u32,
    /// `SIGNUP_PER_MINUTE` per client address.
    pub signup_per_minute: u32,
    /// `TRUSTED_PROXY_HOPS`: proxies that append to `X-Forwarded-For`.
    pub trusted_hops: usize,
    /// `ACCOUNT_LOCK_FAILURES` failed sign-ins of one email within
    /// `ACCOUNT_LOCK_WINDOW_SECONDS` lock it.
    pub lock_failures: i64,
    pub lock_window: Duration,
    /// `PASSWORD_RESET_PER_HOUR` password-reset requests per client address.
    pub reset_per_hour: u32,
    /// `PASSWORD_RESET_PER_EMAIL_PER_HOUR` password-reset requests per email, whether or
    /// not an account has it.
    pub reset_per_email_per_hour: u32,
    /// `PASSWORD_RESET_TTL_MINUTES`: how long a reset token stays valid.
    pub reset_ttl: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self::from_env(&Env::default()).unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

impl LimitsConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Ok(Self {
            hash_concurrency: env.or("HASH_CONCURRENCY", cores)?.max(1),
            hash_queue: env.or("HASH_QUEUE", 32)?,
            signin_per_minute: env.or("SIGNIN_PER_MINUTE", 30)?,
            signup_per_minute: env.or("SIGNUP_PER_MINUTE", 10)?,
            trusted_hops: env.or("TRUSTED_PROXY_HOPS", 1)?,
            lock_failures: env.or("ACCOUNT_LOCK_FAILURES", 20)?.max(1),
            lock_window: env.seconds("ACCOUNT_LOCK_WINDOW_SECONDS", 600)?,
            reset_per_hour: env.or("PASSWORD_RESET_PER_HOUR", 20)?,
            reset_per_email_per_hour: env.or("PASSWORD_RESET_PER_EMAIL_PER_HOUR", 5)?,
            reset_ttl: minutes(env, "PASSWORD_RESET_TTL_MINUTES", 30)?,
        })
    }
}

fn minutes(env: &Env, name: &str, default: u64) -> Result<Duration, ConfigError> {
    match env.or::<u64>(name, default)? {
        0 => Err(ConfigError::new(
            name,
            "must be a positive number of minutes",
        )),
        minutes => Ok(Duration::from_secs(minutes.saturating_mul(60))),
    }
}

/// One message for both reset limits: which one tripped says nothing about the account.
const RESET_LIMITED: &str = "Too many password reset requests; please wait before trying again";

/// The per-address (and per-email) limits, shared by the handlers.
#[derive(Clone)]
pub struct AddressLimits {
    pub signin: KeyedLimit,
    pub signup: KeyedLimit,
    /// Password-reset requests, keyed by client address.
    pub reset: KeyedLimit,
    /// Password-reset requests, keyed by email.
    pub reset_email: KeyedLimit,
    pub trusted_hops: usize,
}

impl AddressLimits {
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            signin: KeyedLimit::per_minute(
                config.signin_per_minute,
                "Too many sign-in attempts; please wait before trying again",
            ),
            signup: KeyedLimit::per_minute(
                config.signup_per_minute,
                "Too many sign-ups from this address; please wait before trying again",
            ),
            reset: KeyedLimit::per_hour(config.reset_per_hour, RESET_LIMITED),
            reset_email: KeyedLimit::per_hour(config.reset_per_email_per_hour, RESET_LIMITED),
            trusted_hops: config.trusted_hops,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reset_limits_and_lifetime_have_defaults_and_a_zero_lifetime_is_refused() {
        let defaults = LimitsConfig::default();
        assert_eq!(
            (defaults.reset_per_hour, defaults.reset_per_email_per_hour),
            (20, 5)
        );
        assert_eq!(defaults.reset_ttl, Duration::from_secs(30 * 60));
        let env = Env::from_pairs([("PASSWORD_RESET_TTL_MINUTES", "5")]);
        assert_eq!(
            LimitsConfig::from_env(&env).unwrap().reset_ttl,
            Duration::from_secs(300)
        );
        let err = LimitsConfig::from_env(&Env::from_pairs([("PASSWORD_RESET_TTL_MINUTES", "0")]))
            .unwrap_err();
        assert_eq!(err.name, "PASSWORD_RESET_TTL_MINUTES");
    }
}
