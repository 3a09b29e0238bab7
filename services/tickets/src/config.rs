use common::bus::BusConfig;
use common::config::{ConfigError, Env, HttpConfig, JwtConfig, MongoConfig};

/// Everything the tickets service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub jwt: JwtConfig,
    pub mongo: MongoConfig,
    pub bus: BusConfig,
    /// `LISTINGS_PER_MINUTE`: tickets one seller may list per minute (per process).
    pub listings_per_minute: u32,
    /// `LIVE_STREAMS_MAX`: live ticket streams (`GET /api/tickets/{id}/events`) one process
    /// keeps open at once (503 beyond).
    pub live_streams_max: usize,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            http: HttpConfig::from_env(env)?,
            jwt: JwtConfig::from_env(env)?,
            mongo: MongoConfig::from_env(env, "tickets")?,
            bus: BusConfig::from_env(env)?,
            listings_per_minute: env.or("LISTINGS_PER_MINUTE", 10)?,
            live_streams_max: env.or("LIVE_STREAMS_MAX", 1000)?,
        })
    }
}
