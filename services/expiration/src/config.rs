use std::time::Duration;

use common::bus::BusConfig;
use common::config::{ConfigError, Env, HttpConfig};
use common::redis::RedisConfig;

/// Everything the expiration service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub bus: BusConfig,
    /// `REDIS_URL`, `REDIS_CA_FILE`
    pub redis: RedisConfig,
    /// `EXPIRATION_KEY_PREFIX`: namespace of this deployment's keys in Redis.
    pub key_prefix: String,
    /// How long a claimed job stays with its worker before another may take it.
    pub lease: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            http: HttpConfig::from_env(env)?,
            bus: BusConfig::from_env(env)?,
            redis: RedisConfig::from_env(env)?,
            key_prefix: env.or("EXPIRATION_KEY_PREFIX", "gittix:expiration".to_owned())?,
            lease: Duration::from_secs(10),
        })
    }
}
