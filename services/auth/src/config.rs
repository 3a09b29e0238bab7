use common::bus::BusConfig;
use common::config::{AppEnv, ConfigError, Env, HttpConfig, JwtConfig, MongoConfig};

/// Everything the auth service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub jwt: JwtConfig,
    pub mongo: MongoConfig,
    pub bus: BusConfig,
    /// `COOKIE_SECURE`: add `Secure` to the session cookie. Defaults to true except in development.
    pub cookie_secure: bool,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let app_env = AppEnv::from_env(env)?;
        Ok(Self {
            http: HttpConfig::from_env(env)?,
            jwt: JwtConfig::from_env(env)?,
            mongo: MongoConfig::from_env(env, "auth")?,
            bus: BusConfig::from_env(env)?,
            cookie_secure: env.or("COOKIE_SECURE", app_env != AppEnv::Development)?,
        })
    }
}
