use common::bus::BusConfig;
use common::config::{AppEnv, ConfigError, Env, HttpConfig, JwtConfig, MongoConfig};

/// Everything the auth service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub jwt: JwtConfig,
    pub mongo: MongoConfig,
    pub bus: BusConfig,
    /// `COOKIE_SECURE`: add `Secure` to the session cookie. Defaults to true unless
    /// `APP_ENV=development`.
    pub cookie_secure: bool,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        // Secure unless development is asked for explicitly: an unset APP_ENV is not a
        // reason to send the session over plain HTTP.
        let development = env.optional::<AppEnv>("APP_ENV")? == Some(AppEnv::Development);
        Ok(Self {
            http: HttpConfig::from_env(env)?,
            jwt: JwtConfig::from_env(env)?,
            mongo: MongoConfig::from_env(env, "auth")?,
            bus: BusConfig::from_env(env)?,
            cookie_secure: env.or("COOKIE_SECURE", !development)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(extra: &[(&'static str, &'static str)]) -> Env {
        let mut pairs = vec![
            ("JWT_KEY", "0123456789abcdef0123456789abcdef"),
            ("MONGO_URL", "mongodb://localhost"),
            ("NATS_URL", "nats://localhost"),
        ];
        pairs.extend_from_slice(extra);
        Env::from_pairs(pairs)
    }

    #[test]
    fn the_cookie_is_secure_unless_development_is_asked_for() {
        assert!(Config::from_env(&env(&[])).unwrap().cookie_secure);
        assert!(
            Config::from_env(&env(&[("APP_ENV", "production")]))
                .unwrap()
                .cookie_secure
        );
        assert!(
            !Config::from_env(&env(&[("APP_ENV", "development")]))
                .unwrap()
                .cookie_secure
        );
        assert!(
            !Config::from_env(&env(&[
                ("APP_ENV", "production"),
                ("COOKIE_SECURE", "false")
            ]))
            .unwrap()
            .cookie_secure
        );
    }
}
