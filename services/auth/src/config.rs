use std::time::Duration;

use common::auth::keys::PrivateKey;
use common::bus::BusConfig;
use common::config::{AppEnv, ConfigError, Env, HttpConfig, JwtConfig, MongoConfig};

use crate::limits::LimitsConfig;

/// Everything the auth service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub sessions: SessionConfig,
    pub mongo: MongoConfig,
    pub bus: BusConfig,
    pub limits: LimitsConfig,
    /// `ADMIN_EMAILS`: comma-separated; these users may ban and unban.
    pub admin_emails: Vec<String>,
    /// `COOKIE_SECURE`: add `Secure` to the session cookies. Defaults to true unless
    /// `APP_ENV=development`.
    pub cookie_secure: bool,
}

/// How sessions are signed and how long their parts last.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `JWT_PRIVATE_KEY`: the Ed25519 key (PKCS#8 PEM) access tokens are signed with.
    pub private_key: PrivateKey,
    /// `JWT_PUBLIC_KEYS` (optional here): further keys whose tokens are still accepted
    /// and published, e.g. the previous key during a rotation.
    pub extra_keys: JwtConfig,
    /// `JWT_TTL_SECONDS`: how long an access token is valid.
    pub access_ttl: Duration,
    /// `REFRESH_TTL_SECONDS`: how long a session lasts without being used.
    pub refresh_ttl: Duration,
}

impl SessionConfig {
    /// Signing with `private_key`, lifetimes at their defaults.
    pub fn new(private_key: PrivateKey) -> Self {
        Self {
            private_key,
            extra_keys: JwtConfig {
                public_keys: Vec::new(),
            },
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(14 * 86_400),
        }
    }

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let pem = env.secret("JWT_PRIVATE_KEY")?;
        let private_key = PrivateKey::parse(pem.expose())
            .map_err(|err| ConfigError::new("JWT_PRIVATE_KEY", err.to_string()))?;
        Ok(Self {
            private_key,
            extra_keys: JwtConfig::optional_from_env(env)?,
            access_ttl: env.seconds("JWT_TTL_SECONDS", 900)?,
            refresh_ttl: env.seconds("REFRESH_TTL_SECONDS", 14 * 86_400)?,
        })
    }
}

impl Config {
    /// The required settings given, every optional one at its default.
    pub fn new(
        http: HttpConfig,
        sessions: SessionConfig,
        mongo: MongoConfig,
        bus: BusConfig,
    ) -> Self {
        Self {
            http,
            sessions,
            mongo,
            bus,
            limits: LimitsConfig::default(),
            admin_emails: Vec::new(),
            cookie_secure: true,
        }
    }

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        // Secure unless development is asked for explicitly: an unset APP_ENV is not a
        // reason to send the session over plain HTTP.
        let development = env.optional::<AppEnv>("APP_ENV")? == Some(AppEnv::Development);
        let admin_emails = env
            .or("ADMIN_EMAILS", String::new())?
            .split(',')
            .map(|email| email.trim().to_lowercase())
            .filter(|email| !email.is_empty())
            .collect();
        Ok(Self {
            http: HttpConfig::from_env(env)?,
            sessions: SessionConfig::from_env(env)?,
            mongo: MongoConfig::from_env(env, "auth")?,
            bus: BusConfig::from_env(env)?,
            limits: LimitsConfig::from_env(env)?,
            admin_emails,
            cookie_secure: env.or("COOKIE_SECURE", !development)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(extra: &[(&'static str, &'static str)]) -> Env {
        let key = Box::leak(PrivateKey::generate().to_pem().into_boxed_str());
        let mut pairs = vec![
            ("JWT_PRIVATE_KEY", &*key),
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

    #[test]
    fn admins_are_listed_by_email_in_any_case() {
        let config =
            Config::from_env(&env(&[("ADMIN_EMAILS", " Ops@Example.com, ,b@c.co ")])).unwrap();
        assert_eq!(config.admin_emails, ["ops@example.com", "b@c.co"]);
        assert!(Config::from_env(&env(&[])).unwrap().admin_emails.is_empty());
    }

    #[test]
    fn a_private_key_that_is_not_one_is_named_and_not_printed() {
        let env = Env::from_pairs([
            ("JWT_PRIVATE_KEY", "hunter2-not-a-key"),
            ("MONGO_URL", "mongodb://localhost"),
            ("NATS_URL", "nats://localhost"),
        ]);
        let err = Config::from_env(&env).unwrap_err();
        assert_eq!(err.name, "JWT_PRIVATE_KEY");
        assert!(!err.to_string().contains("hunter2"));
    }
}
