use std::time::Duration;

use common::bus::BusConfig;
use common::config::{ConfigError, Env, HttpConfig};

/// Everything the expiration service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub bus: BusConfig,
    /// `REDIS_URL`
    pub redis_url: String,
    /// `EXPIRATION_KEY_PREFIX`: namespace of this deployment's keys in Redis.
    pub key_prefix: String,
    /// How long a claimed job stays with its worker before another may take it.
    pub lease: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let redis_url: String = env.required("REDIS_URL")?;
        if !redis_url.starts_with("redis://") && !redis_url.starts_with("rediss://") {
            return Err(ConfigError::new(
                "REDIS_URL",
                "must start with redis:// or rediss://",
            ));
        }
        Ok(Self {
            http: HttpConfig::from_env(env)?,
            bus: BusConfig::from_env(env)?,
            redis_url,
            key_prefix: env.or("EXPIRATION_KEY_PREFIX", "gittix:expiration".to_owned())?,
            lease: Duration::from_secs(10),
        })
    }
}
