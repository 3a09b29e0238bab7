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
    /// `PAYMENT_GRACE_SECONDS`: how long after its payment deadline an unpaid order is
    /// kept, so a charge accepted just in time completes it. Longer than payments'
    /// `STRIPE_TIMEOUT_SECONDS` plus a margin.
    pub payment_grace: Duration,
    /// `PAYMENT_CURRENCY`: the currency every charge must be in to complete an order.
    pub currency: String,
    /// `MAX_ACTIVE_ORDERS_PER_USER`: unpaid orders one buyer may hold at once.
    pub max_active_orders: usize,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            http: HttpConfig::from_env(env)?,
            jwt: JwtConfig::from_env(env)?,
            mongo: MongoConfig::from_env(env, "orders")?,
            bus: BusConfig::from_env(env)?,
            expiration_window: env.seconds("EXPIRATION_WINDOW_SECONDS", 900)?,
            payment_grace: env.seconds("PAYMENT_GRACE_SECONDS", 30)?,
            currency: env
                .or("PAYMENT_CURRENCY", "usd".to_owned())?
                .to_ascii_lowercase(),
            max_active_orders: env.or("MAX_ACTIVE_ORDERS_PER_USER", 5)?.max(1),
        })
    }
}
