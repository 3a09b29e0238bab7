use std::time::Duration;

use common::bus::BusConfig;
use common::config::{ConfigError, Env, HttpConfig, JwtConfig, MongoConfig};

/// Everything the orders service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub jwt: JwtConfig,
    pub mongo: MongoConfig,
    pub bus: BusConfig,
    /// `EXPIRATION_WINDOW_SECONDS`: how long a reservation waits for payment.
    pub expiration_window: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            http: HttpConfig::from_env(env)?,
            jwt: JwtConfig::from_env(env)?,
            mongo: MongoConfig::from_env(env, "orders")?,
            bus: BusConfig::from_env(env)?,
            expiration_window: env.seconds("EXPIRATION_WINDOW_SECONDS", 900)?,
        })
    }
}
