use std::time::Duration;

use common::bus::BusConfig;
use common::config::{AppEnv, ConfigError, Env, HttpConfig, JwtConfig, MongoConfig, Secret};

/// Which payment gateway charges cards.
#[derive(Debug, Clone)]
pub enum GatewayConfig {
    /// Real Stripe (or a stand-in at `api_base`, for tests).
    Stripe {
        secret_key: Secret,
        webhook_secret: Secret,
        api_base: Option<String>,
        timeout: Duration,
    },
    /// Succeeds without any network call: local runs without keys. Never in production.
    Simulated,
}

/// Everything the payments service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub jwt: JwtConfig,
    pub mongo: MongoConfig,
    pub bus: BusConfig,
    pub gateway: GatewayConfig,
    /// `PAYMENT_CURRENCY`: ISO code, lower case, of every charge.
    pub currency: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let app_env = AppEnv::from_env(env)?;
        let gateway: String = env.required("PAYMENT_GATEWAY")?;
        let gateway = match gateway.as_str() {
            "stripe" => GatewayConfig::Stripe {
                secret_key: env.secret("STRIPE_SECRET_KEY")?,
                webhook_secret: env.secret("STRIPE_WEBHOOK_SECRET")?,
                api_base: env.optional("STRIPE_API_BASE")?,
                timeout: stripe_timeout(env)?,
            },
            "simulated" if app_env == AppEnv::Production => {
                return Err(ConfigError::new(
                    "PAYMENT_GATEWAY",
                    "simulated payments are refused when APP_ENV=production",
                ));
            }
            "simulated" => GatewayConfig::Simulated,
            other => {
                return Err(ConfigError::new(
                    "PAYMENT_GATEWAY",
                    format!("expected stripe or simulated, got {other:?}"),
                ));
            }
        };
        let currency: String = env.or("PAYMENT_CURRENCY", "usd".to_owned())?;
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_lowercase()) {
            return Err(ConfigError::new(
                "PAYMENT_CURRENCY",
                "must be a lower-case ISO code such as usd",
            ));
        }
        Ok(Self {
            http: HttpConfig::from_env(env)?,
            jwt: JwtConfig::from_env(env)?,
            mongo: MongoConfig::from_env(env, "payments")?,
            bus: BusConfig::from_env(env)?,
            gateway,
            currency,
        })
    }
}

/// Below the HTTP request timeout, so a slow Stripe gives our 503, not a cut-off request.
fn stripe_timeout(env: &Env) -> Result<Duration, ConfigError> {
    let timeout = env.seconds("STRIPE_TIMEOUT_SECONDS", 20)?;
    if timeout >= common::http::REQUEST_TIMEOUT {
        return Err(ConfigError::new(
            "STRIPE_TIMEOUT_SECONDS",
            format!(
                "must be less than {} seconds",
                common::http::REQUEST_TIMEOUT.as_secs()
            ),
        ));
    }
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(extra: &[(&'static str, &'static str)]) -> Env {
        let key = common::auth::keys::PrivateKey::generate().public().to_pem();
        let mut pairs = vec![
            ("JWT_PUBLIC_KEYS", &*Box::leak(key.into_boxed_str())),
            ("MONGO_URL", "mongodb://localhost"),
            ("NATS_URL", "nats://localhost"),
        ];
        pairs.extend_from_slice(extra);
        Env::from_pairs(pairs)
    }

    #[test]
    fn stripe_needs_both_secrets() {
        let err = Config::from_env(&env(&[
            ("PAYMENT_GATEWAY", "stripe"),
            ("STRIPE_SECRET_KEY", "sk_test_x"),
        ]))
        .unwrap_err();
        assert_eq!(err.name, "STRIPE_WEBHOOK_SECRET");
        let ok = Config::from_env(&env(&[
            ("PAYMENT_GATEWAY", "stripe"),
            ("STRIPE_SECRET_KEY", "sk_test_x"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
        ]));
        assert!(matches!(ok.unwrap().gateway, GatewayConfig::Stripe { .. }));
    }

    #[test]
    fn the_simulated_gateway_refuses_production() {
        let err = Config::from_env(&env(&[
            ("PAYMENT_GATEWAY", "simulated"),
            ("APP_ENV", "production"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("refused when APP_ENV=production"),
            "{err}"
        );
        assert!(Config::from_env(&env(&[("PAYMENT_GATEWAY", "simulated")])).is_ok());
        assert_eq!(
            Config::from_env(&env(&[("PAYMENT_GATEWAY", "paypal")]))
                .unwrap_err()
                .name,
            "PAYMENT_GATEWAY"
        );
    }

    #[test]
    fn currency_must_be_an_iso_code() {
        let err = Config::from_env(&env(&[
            ("PAYMENT_GATEWAY", "simulated"),
            ("PAYMENT_CURRENCY", "USD"),
        ]))
        .unwrap_err();
        assert_eq!(err.name, "PAYMENT_CURRENCY");
    }
}
